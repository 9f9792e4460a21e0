from django.db import connection
from django.test.utils import CaptureQueriesContext
from tests.api_support import purchase_body

def test_print(api, member):
    api.post("/purchases/", purchase_body(member, "WARM-UP"))
    with CaptureQueriesContext(connection) as c:
        r = api.post("/purchases/", purchase_body(member, "Q-1"))
    print(r.json())
    for q in c.captured_queries:
        print("Q:", q["sql"][:400])
