"""Demo feedback: three surveys (NPS after purchases, CSAT after complaints, CES on the till's
tablet), a year of answers whose NPS visibly improves month by month, follow-ups for the recent
detractors, complaints in every state with their conversations, and an open survey for the
demo member in the portal.

Answers, follow-ups, complaints and messages are bulk inserts (a year of answers takes well
under a second); goodwill goes through the ledger service so the ledger stays exact.
Idempotent: nothing is added when the first survey already exists.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from members.models import Member
from partners.models import Store

from . import services
from .models import Complaint, ComplaintMessage, FollowUp, Response, Survey, SurveyInvitation

SURVEYS = [
    # name, kind, trigger, question de/en, follow-up de/en, reward points
    ("NPS nach dem Einkauf", Survey.Kind.NPS, Survey.Trigger.PURCHASE,
     "Wie wahrscheinlich ist es, dass Sie uns weiterempfehlen?", "How likely are you to recommend us to a friend?",
     "Was ist der wichtigste Grund für Ihre Bewertung?", "What is the main reason for your score?", 20),
    ("Zufriedenheit mit der Reklamation", Survey.Kind.CSAT, Survey.Trigger.COMPLAINT_CLOSED,
     "Wie zufrieden sind Sie mit der Lösung Ihres Anliegens?", "How satisfied are you with how we solved your issue?",
     "Was hätten wir besser machen können?", "What could we have done better?", 0),
    ("Kassen-Tablet: Einkauf", Survey.Kind.CES, Survey.Trigger.MANUAL,
     "Wie einfach war Ihr Einkauf heute?", "How easy was your shopping today?", "", "", 0),
]

COMMENTS = {
    "promoter": ["Immer freundlich und kompetent.", "Der beste Kaffee der Stadt!", "Schnelle Kasse, tolle Auswahl.",
                 "Die Punkte lohnen sich wirklich.", ""],
    "passive": ["Ganz okay, manchmal etwas voll.", "Preise könnten besser sein.", "", ""],
    "detractor": ["Lange Wartezeit an der Kasse.", "Gutschein wurde nicht angenommen.", "Ware war nicht frisch.",
                  "Unfreundliche Bedienung.", ""],
}

COMPLAINTS = [
    # status, category, subject, description, days ago, messages (kind, text)
    ("open", "product", "Kaffeemühle defekt", "Die Mühle mahlt nach einer Woche nicht mehr.", 0, []),
    ("open", "voucher", "Gutschein abgelehnt", "An der Kasse hieß es, der Code sei ungültig.", 4, []),  # overdue
    ("in_progress", "delivery", "Lieferung unvollständig", "Es fehlte eine Packung Bohnen.", 1,
     [("reply", "Danke für Ihre Nachricht, wir prüfen das mit dem Lager."),
      ("note", "Lager informiert, Rückmeldung bis morgen.")]),
    ("waiting", "points", "Punkte fehlen", "Mein Einkauf vom Samstag wurde nicht gutgeschrieben.", 2,
     [("reply", "Können Sie uns bitte die Bonnummer schicken?")]),
    ("resolved", "service", "Unfreundlich an der Kasse", "Die Kassiererin war sehr unhöflich.", 6,
     [("reply", "Das tut uns leid. Wir haben mit dem Team gesprochen und schreiben Ihnen 200 Punkte gut."),
      ("member", "Danke, das ist nett.")]),
    ("closed", "billing", "Doppelt abgebucht", "Der Betrag wurde zweimal abgebucht.", 20,
     [("reply", "Die doppelte Buchung wurde storniert."), ("member", "Ist angekommen, danke!")]),
    ("closed", "product", "Milch abgelaufen", "Die Milch war schon abgelaufen.", 35,
     [("reply", "Wir erstatten Ihnen den Betrag und haben das Regal geprüft.")]),
]


def _score(rng: random.Random, month_index: int) -> int:
    """NPS answers that get better over the year: promoters from 35 % to 60 %, detractors
    from 32 % to 12 % (an NPS from about +3 to about +48)."""
    progress = month_index / 11
    promoters, detractors = 0.35 + 0.25 * progress, 0.32 - 0.20 * progress
    draw = rng.random()
    if draw < promoters:
        return rng.choice([9, 10, 10])
    if draw < promoters + detractors:
        return rng.choice([0, 2, 3, 4, 5, 6, 6])
    return rng.choice([7, 8])


def _group(score: int) -> str:
    return "promoter" if score >= 9 else "detractor" if score <= 6 else "passive"


@transaction.atomic
def seed_feedback_demo(*, seed: int = 23, now: datetime | None = None, answers_per_month: int = 120) -> dict:
    if Survey.objects.filter(name=SURVEYS[0][0]).exists():
        return {"created": False}
    rng = random.Random(seed)
    now = now or timezone.now()
    surveys = [Survey.objects.create(name=name, kind=kind, trigger=trigger, question_de=q_de, question_en=q_en,
                                     follow_up_de=f_de, follow_up_en=f_en, reward_points=points)
               for name, kind, trigger, q_de, q_en, f_de, f_en, points in SURVEYS]
    nps_survey, csat_survey, ces_survey = surveys
    people = list(Member.objects.filter(status=Member.Status.ACTIVE).order_by("pk").values_list("pk", "tier_id")[:3000])
    stores = list(Store.objects.order_by("pk").values_list("pk", flat=True)[:8])

    responses = []
    # From the first day of the month eleven months ago: twelve whole months, the last one running.
    this_month = timezone.localdate(now).replace(day=1)
    start = timezone.make_aware(datetime.combine((this_month - timedelta(days=10 * 30 + 15)).replace(day=1),
                                                 datetime.min.time()))
    for month_index in range(12):
        for _ in range(answers_per_month):
            created = start + timedelta(days=month_index * 30.44 + rng.random() * 28, minutes=rng.randint(0, 600))
            if created > now:
                continue  # the running month has answers up to today only
            member_id, tier_id = rng.choice(people) if people and rng.random() < 0.85 else (None, None)
            score = _score(rng, month_index)
            channel = rng.choice([Response.Channel.EMAIL, Response.Channel.EMAIL, Response.Channel.PORTAL,
                                  Response.Channel.API])
            responses.append(Response(
                survey=nps_survey, member_id=member_id, tier_id=tier_id, score=score, channel=channel,
                comment=rng.choice(COMMENTS[_group(score)]), created_at=created,
                store_id=rng.choice(stores) if stores and channel == Response.Channel.API else None))
        for _ in range(answers_per_month // 4):  # the tablet's effort score, also improving a little
            created = start + timedelta(days=month_index * 30.44 + rng.random() * 28)
            responses.append(Response(survey=ces_survey, score=min(7, max(1, round(rng.gauss(4.6 + month_index / 8,
                                                                                               1.1)))),
                                      channel=Response.Channel.API, created_at=min(created, now),
                                      store_id=rng.choice(stores) if stores else None))
    for _ in range(40):
        created = now - timedelta(days=rng.randint(1, 360))
        responses.append(Response(survey=csat_survey, score=rng.choice([5, 5, 4, 4, 4, 3, 2, 1]),
                                  channel=Response.Channel.EMAIL, created_at=created))
    Response.objects.bulk_create(responses, batch_size=2000)

    # Follow-ups: the last 60 days' detractors (and unhappy CSAT answers); older ones are done.
    follow_ups = []
    for response in Response.objects.filter(created_at__gte=now - timedelta(days=120)).select_related("survey"):
        if not services.needs_follow_up(response.survey.kind, response.score):
            continue
        recent = response.created_at >= now - timedelta(days=30)
        follow_ups.append(FollowUp(
            response=response, created_at=response.created_at, due_at=response.created_at + timedelta(days=2),
            status=FollowUp.Status.OPEN if recent else FollowUp.Status.DONE,
            done_at=None if recent else response.created_at + timedelta(days=1),
            note="" if recent else "Kunde angerufen, Gutschein angeboten."))
    FollowUp.objects.bulk_create(follow_ups, batch_size=2000)

    complaints, demo_member = _seed_complaints(rng, now)
    if demo_member is not None:
        SurveyInvitation.objects.create(survey=nps_survey, member=demo_member, reason=SurveyInvitation.Reason.PURCHASE,
                                        created_at=now - timedelta(days=1), expires_at=now + timedelta(days=13))
    return {"created": True, "responses": len(responses), "follow_ups": len(follow_ups), "complaints": complaints}


def _seed_complaints(rng: random.Random, now: datetime) -> tuple[int, Member | None]:
    from members.demo import DEMO_MEMBER_EMAIL

    demo_member = Member.objects.filter(email__iexact=DEMO_MEMBER_EMAIL).first()
    others = list(Member.objects.filter(status=Member.Status.ACTIVE).exclude(email__iexact=DEMO_MEMBER_EMAIL)
                  .order_by("pk").values_list("pk", flat=True)[:200])
    if demo_member is None and not others:
        return 0, None
    rows, conversations = [], []
    for index, (status, category, subject, description, days_ago, messages) in enumerate(COMPLAINTS):
        opened = now - timedelta(days=days_ago, hours=rng.randint(1, 8))
        member_id = demo_member.pk if demo_member is not None and index in (0, 3, 5) else \
            rng.choice(others) if others else demo_member.pk
        done = status in ("resolved", "closed")
        rows.append(Complaint(
            member_id=member_id, category=category, subject=subject, description=description, status=status,
            channel=rng.choice([Complaint.Channel.PORTAL, Complaint.Channel.STAFF]), created_at=opened,
            due_at=services.complaint_due_at(category, opened),
            resolved_at=opened + timedelta(days=1) if done else None,
            closed_at=opened + timedelta(days=3) if status == "closed" else None))
        conversations.append(messages)
    created = Complaint.objects.bulk_create(rows)
    ComplaintMessage.objects.bulk_create([
        ComplaintMessage(complaint=complaint, kind=kind, body=text,
                         created_at=complaint.created_at + timedelta(hours=3 * (position + 1)))
        for complaint, messages in zip(created, conversations, strict=True)
        for position, (kind, text) in enumerate(messages)])
    resolved = next(complaint for complaint in created if complaint.status == "resolved")
    services.complaint_goodwill_points(complaint_id=resolved.pk, points=200, staff_user=None)
    return len(created), demo_member
