"""The beat schedule, kept in django-celery-beat's tables so staff can see and change it.

`ensure_periodic_tasks` runs after every `migrate`: it creates missing schedules and leaves
ones staff have edited alone. Later features add their jobs to PERIODIC_TASKS.
"""

from __future__ import annotations

PERIODIC_TASKS = [
    # (name, task, interval seconds or a crontab dict)
    ("Heartbeat (health check)", "loyalty_site.heartbeat", 15),
    ("Refresh dashboard figures", "loyalty_site.tasks.refresh_dashboard", 900),
    ("Purge old idempotency records (partner API)", "loyalty_site.api.purge_idempotency_records",
     {"minute": "40", "hour": "3"}),
    ("Release pending points", "rewards.tasks.release_pending_points", 900),
    ("Expire points", "rewards.tasks.expire_points", {"minute": "15", "hour": "2"}),
    ("Expire vouchers", "rewards.tasks.expire_vouchers", {"minute": "20", "hour": "2"}),
    ("Issue stamp card rewards that waited", "rewards.tasks.issue_waiting_stamp_rewards", 3600),
    ("End granted tiers", "members.tasks.end_tier_grants", {"minute": "30", "hour": "2"}),
    ("Refresh rolling purchase statistics", "rewards.tasks.refresh_member_stats", {"minute": "45", "hour": "1"}),
    ("Yearly tier review", "members.tasks.review_tiers", {"minute": "0", "hour": "3", "day_of_month": "1",
                                                          "month_of_year": "1"}),
    ("Start scheduled campaigns", "campaigns.tasks.start_due_campaigns", 60),
    ("Run campaign triggers", "campaigns.tasks.run_triggers", 900),
    ("Resume stalled campaign sends", "campaigns.tasks.resume_stalled_sends", 300),
    ("Pay referrals after their hold period", "referrals.tasks.release_due_referrals", 900),
    ("Expire referrals past their attribution window", "referrals.tasks.expire_referrals",
     {"minute": "50", "hour": "2"}),
    ("Resume webhook deliveries whose task was lost", "loyalty_site.webhooks.resume", 300),
    ("Resume imports whose worker died", "members.tasks.resume_stalled_imports", 300),
    ("Retention: warn and erase inactive members, purge old logs", "members.tasks.apply_retention",
     {"minute": "30", "hour": "4"}),
    ("Survey invitations after purchases", "feedback.tasks.invite_after_purchases", {"minute": "0", "hour": "10"}),
    ("Assign coupons to their audiences", "offers.tasks.assign_active_offers", {"minute": "10", "hour": "5"}),
]


def ensure_periodic_tasks(**kwargs) -> None:
    from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask

    for name, task, when in PERIODIC_TASKS:
        if PeriodicTask.objects.filter(name=name).exists():
            continue
        if isinstance(when, int):
            interval, _ = IntervalSchedule.objects.get_or_create(every=when, period=IntervalSchedule.SECONDS)
            PeriodicTask.objects.create(name=name, task=task, interval=interval)
        else:
            crontab, _ = CrontabSchedule.objects.get_or_create(timezone="Europe/Berlin", **when)
            PeriodicTask.objects.create(name=name, task=task, crontab=crontab)
