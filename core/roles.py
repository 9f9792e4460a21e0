"""Staff roles: which group may do what in the console.

Groups are created by a migration; their permissions are (re)applied after every `migrate`,
so permissions of models added later land in the right groups without another migration.
Anything not listed is not granted: roles get only what they need.
"""

from __future__ import annotations

VIEW, ADD, CHANGE, DELETE = "view", "add", "change", "delete"
ALL = (VIEW, ADD, CHANGE, DELETE)

# app label -> model -> actions, and extra permission codenames per group.
GROUP_PERMISSIONS: dict[str, dict] = {
    "Marketing": {
        "models": {
            "members": {"member": (VIEW,), "tier": (VIEW,), "tag": ALL, "tierhistory": (VIEW,)},
            "rewards": {"reward": (VIEW, ADD, CHANGE), "donationcause": (VIEW, ADD, CHANGE),
                        "stampcardprogram": (VIEW, ADD, CHANGE),
                        "cashbackprogram": (VIEW, CHANGE), "earningrule": (VIEW, ADD, CHANGE),
                        "redemption": (VIEW,), "tiermembership": (VIEW,),
                        # The programme manager's settings (one record: adding it is its first save).
                        "programmesettings": (VIEW, ADD, CHANGE)},
            "partners": {"store": (VIEW,), "partner": (VIEW,)},
            "campaigns": "*",
            "referrals": {"referralprogram": (VIEW, ADD, CHANGE), "referral": (VIEW,)},
            "feedback": {"survey": (VIEW, ADD, CHANGE), "response": (VIEW,)},
            "offers": {"offer": (VIEW, ADD, CHANGE), "memberoffer": (VIEW,), "offeruse": (VIEW,)},
            # Customer lists and opt-ins in (members import; opening balances need adjust_points),
            # and the lists a campaign needs out (members by consent, tier, country, tag).
            "transfers": {"importjob": (VIEW, ADD)},
            "engagement": {"challenge": (VIEW, ADD, CHANGE), "badge": (VIEW, ADD, CHANGE),
                           "challengeprogress": (VIEW,), "memberbadge": (VIEW,)},
        },
        "extra": ["campaigns.send_campaign", "campaigns.draw_raffle", "offers.assign_offer", "rewards.invite_to_tier",
                  "members.export_personal_data"],
    },
    "Support": {
        "models": {
            "members": {"member": (VIEW, CHANGE), "tier": (VIEW,), "tag": (VIEW,), "consentrecord": (VIEW,),
                        "tierhistory": (VIEW,), "membermerge": (VIEW,), "privacyrequest": (VIEW,)},
            "rewards": {"pointentry": (VIEW,), "purchase": (VIEW,), "purchasereturn": (VIEW,),
                        "redemption": (VIEW,), "reward": (VIEW,), "stampcard": (VIEW,), "donation": (VIEW,),
                        "tiermembership": (VIEW,)},
            "referrals": {"referral": (VIEW, ADD, CHANGE)},  # support enters forgotten codes, reviews
            "feedback": "*",
            "engagement": {"challengeprogress": (VIEW,), "memberbadge": (VIEW,)},
            "offers": {"offer": (VIEW,), "memberoffer": (VIEW,), "offeruse": (VIEW,)},  # "where is my coupon?"
        },
        # Support handles access and erasure requests (Art. 15, 17) of members without a login.
        "extra": ["members.adjust_points", "members.block_member", "members.merge_members",
                  "members.export_member_data", "members.erase_member",
                  "rewards.cancel_redemption", "referrals.review_referral",
                  # VIP memberships are sold at the service desk; invitations are the programme's.
                  "rewards.sell_membership"],
    },
    "Finance": {
        "models": {
            "members": {"member": (VIEW,), "tier": (VIEW,)},
            "rewards": {"pointentry": (VIEW,), "purchase": (VIEW,), "purchasereturn": (VIEW,),
                        "redemption": (VIEW,), "reward": (VIEW,), "earningrule": (VIEW,),
                        "cashbackprogram": (VIEW,), "storedaytotal": (VIEW,), "donationcause": (VIEW,),
                        "donation": (VIEW,)},
            "partners": {"partner": (VIEW,), "store": (VIEW,)},
        },
        "extra": ["members.export_ledger", "rewards.export_donation_totals"],
    },
    "Administrator": {"models": "*", "extra": []},
}


def _wanted(spec) -> tuple[list[tuple[str, str | None, tuple]], list[str]]:
    wanted = []
    for app_label, per_model in spec["models"].items():
        if per_model == "*":
            wanted.append((app_label, None, ALL))
        else:
            wanted.extend((app_label, model, actions) for model, actions in per_model.items())
    return wanted, spec["extra"]


def ensure_group_permissions(**kwargs) -> None:
    """Give each staff group exactly the permissions of its role (idempotent)."""
    from django.contrib.auth.models import Group, Permission
    from django.db.models import Q

    for group_name, spec in GROUP_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=group_name)
        if spec["models"] == "*":
            group.permissions.set(Permission.objects.all())
            continue
        wanted, extra = _wanted(spec)
        query = Q(pk__in=[])
        for app_label, model, actions in wanted:
            condition = Q(content_type__app_label=app_label,
                          codename__regex=rf"^({'|'.join(actions)})_")
            if model:
                condition &= Q(content_type__model=model)
            query |= condition
        for dotted in extra:
            app_label, codename = dotted.split(".")
            query |= Q(content_type__app_label=app_label, codename=codename)
        group.permissions.set(Permission.objects.filter(query))
