"""Message texts render within bounds: a kilobyte of nested `{% with %}` and `add` can't make
a preview or a send render millions of characters, and such a text can't be saved."""

from __future__ import annotations

import pytest
from django.core import mail
from django.urls import reverse

from campaigns import rendering, services
from campaigns.errors import CampaignNotReady, InvalidTemplate, TemplateTooLarge
from campaigns.models import Campaign, Message, Variant
from campaigns.rendering import render_text, template_validate
from tests import factories

CONTEXT = dict(rendering.CONTEXT_HELP)


def doubling(levels: int, *, times: int = 1) -> str:
    """Each level doubles the previous value: 10 × 2^levels characters from ~30 bytes a level,
    shown `times` times."""
    text = '{% with v0="xxxxxxxxxx" %}'
    for level in range(1, levels + 1):
        text += f"{{% with v{level}=v{level - 1}|add:v{level - 1} %}}"
    return text + f"{{{{ v{levels} }}}}" * times + "{% endwith %}" * (levels + 1)


def multiplying(levels: int = 4, factor: int = 32, *, seed: str = "xxxxxxxxxx", show: str = "") -> str:
    """Within the nesting bound: each level adds the previous value to itself `factor` times,
    10 × 32^4 = 10,485,760 characters from about a kilobyte."""
    text = f'{{% with v0="{seed}" %}}'
    for level in range(1, levels + 1):
        text += f"{{% with v{level}=v{level - 1}{f'|add:v{level - 1}' * (factor - 1)} %}}"
    return text + (show or f"{{{{ v{levels} }}}}") + "{% endwith %}" * (levels + 1)


def test_an_add_chain_is_refused_instead_of_rendering_megabytes():
    bomb = multiplying()
    assert len(bomb) < 1100  # about a kilobyte
    with pytest.raises(TemplateTooLarge, match="more than 100000 characters"):
        render_text(bomb, CONTEXT)
    with pytest.raises(TemplateTooLarge):
        template_validate(bomb)


def test_the_kilobyte_bomb_of_the_incident_stops_at_once():
    bomb = doubling(25)  # 10 × 2^25 = 335 million characters if it were rendered
    assert len(bomb) < 1100
    with pytest.raises(InvalidTemplate):  # too deep a nest, and too long at the 14th level if it weren't
        render_text(bomb, CONTEXT)
    with pytest.raises(InvalidTemplate):
        template_validate(bomb)


def test_repeating_a_large_value_is_refused_by_the_output_count():
    text = doubling(13, times=3)  # 3 × 81,920 characters
    with pytest.raises(TemplateTooLarge):
        render_text(text, CONTEXT)
    assert len(render_text(doubling(13), CONTEXT)) == 81_920  # one of them is fine


def test_growing_filters_other_than_add_are_bounded_too():
    # 90,000 ampersands are within the bound; URL-encoded they would be 270,000 characters.
    ampersands = multiplying(2, 30, seed="&" * 100, show="{{ v2|length }}")
    assert render_text(ampersands, CONTEXT) == "90000"
    with pytest.raises(TemplateTooLarge):
        render_text(ampersands.replace("{{ v2|length }}", "{% with e=v2|urlencode %}{{ e|length }}{% endwith %}"),
                    CONTEXT)


def test_a_render_stops_after_its_time_budget(monkeypatch):
    monkeypatch.setattr(rendering, "RENDER_SECONDS", -1.0)  # already over budget at the first node
    with pytest.raises(TemplateTooLarge, match="seconds"):
        render_text("Hallo {{ first_name }}", CONTEXT)


def test_block_tags_nested_too_deep_are_refused_not_a_recursion_error():
    text = "{% if 1 %}" * 600 + "x" + "{% endif %}" * 600
    with pytest.raises(InvalidTemplate):
        template_validate(text)
    with pytest.raises(InvalidTemplate):
        render_text(text, CONTEXT)
    assert render_text("{% if 1 %}" * 10 + "x" + "{% endif %}" * 10, CONTEXT) == "x"


def test_ordinary_texts_render_as_before():
    assert render_text("{% with n=balance|add:bonus_points %}{{ first_name|upper }}: {{ n }}{% endwith %}",
                       CONTEXT) == "ERIKA: 1350"
    template_validate("{% if balance > 1000 %}Viele Punkte{% else %}{{ name|default:'Hallo' }}{% endif %}")


# --- The console and sends ----------------------------------------------------------------------

@pytest.fixture
def staff_client(client, db):
    client.force_login(factories.UserFactory(is_staff=True, is_superuser=True))
    return client


def test_saving_a_campaign_whose_text_renders_too_much_is_refused_with_a_form_error(staff_client, tiers):
    response = staff_client.post(reverse("admin:campaigns_campaign_add"), {
        "name": "Bombe", "kind": "broadcast", "channel": "email", "holdout_percent": "10",
        "attribution_days": "14", "entry_points": "0", "winners_count": "1",
        "variants-TOTAL_FORMS": "1", "variants-INITIAL_FORMS": "0", "variants-MIN_NUM_FORMS": "0",
        "variants-MAX_NUM_FORMS": "1000", "variants-0-name": "A", "variants-0-weight": "1",
        "variants-0-subject_de": "Hallo", "variants-0-body_de": multiplying(),
        "variants-0-subject_en": "", "variants-0-body_en": "",
    })
    assert response.status_code == 200
    page = response.content.decode()
    assert "100000" in page and ("cannot be rendered" in page or "kann nicht" in page)
    assert not Campaign.objects.filter(name="Bombe").exists()


def test_the_preview_of_a_stored_bomb_shows_the_error(staff_client, tiers):
    factories.enrolled_member(first_name="Erika")
    campaign = factories.CampaignFactory()
    factories.VariantFactory(campaign=campaign, name="A", body_de=multiplying())  # stored before the check
    response = staff_client.get(reverse("admin:campaigns_campaign_change", args=[campaign.pk]))
    assert response.status_code == 200
    page = response.content.decode()
    assert 'data-testid="previews"' in page and "100000" in page
    assert len(page) < 1_000_000


def test_a_campaign_with_a_bomb_cannot_start_and_a_send_records_the_error(tiers):
    member = factories.enrolled_member()
    factories.ConsentRecordFactory(member=member, purpose="email")
    campaign = factories.CampaignFactory()
    variant = factories.VariantFactory(campaign=campaign, name="A", body_de=multiplying())
    with pytest.raises(CampaignNotReady):
        services.campaign_launch(campaign_id=campaign.pk)
    Variant.objects.filter(pk=variant.pk).update(body_de="Hallo")
    services.campaign_launch(campaign_id=campaign.pk)
    Variant.objects.filter(pk=variant.pk).update(body_de=multiplying())  # changed behind the console's back
    report = services.campaign_run_inline(campaign_id=campaign.pk)
    assert report.failed == 1 and not mail.outbox
    message = Message.objects.get(campaign=campaign)
    assert message.status == Message.Status.FAILED
    assert "100000" in message.error


def test_twenty_nested_block_tags_are_allowed_and_twenty_one_are_not():
    assert render_text("{% if 1 %}" * 20 + "x" + "{% endif %}" * 20, CONTEXT) == "x"
    with pytest.raises(InvalidTemplate, match="nest more than 20 deep"):
        template_validate("{% if 1 %}" * 21 + "x" + "{% endif %}" * 21)
