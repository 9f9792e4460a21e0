"""The optional referral code on the portal's sign-up form (allauth's ACCOUNT_SIGNUP_FORM_CLASS;
the name fields come from members.forms.SignupNameForm).

A code remembered from a share link (session, or the cookie if the session is gone) fills the
field in; a code typed in wins. The code waits in a `ReferralClaim` until the e-mail address is
verified and the login has its member (referrals.signals)."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from members.forms import SignupNameForm

from . import links, services
from .models import Referral, ReferralClaim


class SignupReferralForm(SignupNameForm):
    referral_code = forms.CharField(
        label=_("Referral code (optional)"), required=False, max_length=20,
        widget=forms.TextInput(attrs={"autocomplete": "off", "autocapitalize": "characters"}),
        help_text=_("Did a friend invite you? Enter their code and you both get a welcome bonus."),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        remembered = links.remembered(_current_request())
        # The friend sees who invited them (first name only; empty for an invalid code).
        self.inviter_name = services.inviter_first_name(remembered.code) if remembered is not None else ""
        if remembered is not None:
            self.fields["referral_code"].initial = remembered.code

    def clean_referral_code(self) -> str:
        code = services.normalise_code(self.cleaned_data.get("referral_code", ""))
        if code and services.referrer_for_code(code) is None:
            raise forms.ValidationError(_("This referral code is not valid."))
        return code

    def signup(self, request, user) -> None:
        """Called by allauth once the user exists (before the e-mail is verified)."""
        remembered = links.remembered(request)
        code = self.cleaned_data.get("referral_code") or (remembered.code if remembered else "")
        if not code or getattr(user, "is_staff", False):
            return
        if remembered is not None and remembered.code == code:
            channel, started_at = Referral.Channel.LINK, remembered.started_at
        else:
            from django.utils import timezone

            channel, started_at = Referral.Channel.SIGNUP, timezone.now()
        ReferralClaim.objects.update_or_create(user=user, defaults={"code": code, "channel": channel,
                                                                    "started_at": started_at})
        links.forget(request)


def _current_request():
    try:
        from allauth.core import context

        return context.request
    except (ImportError, LookupError, AttributeError):
        return None
