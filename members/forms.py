"""Forms of the member portal. They validate; the views hand the cleaned data to services."""

from __future__ import annotations

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from .models import ConsentRecord, Member
from .services import PROFILE_FIELDS

COUNTRIES = [
    ("DE", _("Germany")), ("AT", _("Austria")), ("CH", _("Switzerland")), ("LI", _("Liechtenstein")),
    ("LU", _("Luxembourg")), ("BE", _("Belgium")), ("NL", _("Netherlands")), ("FR", _("France")),
    ("IT", _("Italy")), ("DK", _("Denmark")), ("PL", _("Poland")), ("CZ", _("Czechia")),
]


class SignupNameForm(forms.Form):
    """The name on the portal's sign-up form. allauth's adapter keeps `first_name` and `last_name`
    on the new user (`save_user`) until the e-mail is verified; `member_link_or_enrol` then gives
    them to the member. The lengths are the member's, so nothing is cut on the way."""

    first_name = forms.CharField(label=_("First name"), max_length=Member._meta.get_field("first_name").max_length,
                                 error_messages={"required": _("Please enter your first name.")},
                                 widget=forms.TextInput(attrs={"autocomplete": "given-name"}))
    last_name = forms.CharField(label=_("Last name (optional)"), required=False,
                                max_length=Member._meta.get_field("last_name").max_length,
                                widget=forms.TextInput(attrs={"autocomplete": "family-name"}))
    # allauth adds e-mail and passwords in its own __init__: the name comes first all the same.
    field_order = ["first_name", "last_name", "email", "password1", "password2"]

    def signup(self, request, user) -> None:
        """Called by allauth once the user exists; the adapter has already kept the name."""


# The consent texts the member sees. Changing a wording means a new
# settings.LOYALTY_CONSENT_TEXT_VERSION: every consent record names the version it was given to.
CONSENT_TEXTS = {
    ConsentRecord.Purpose.EMAIL: _(
        "Yes, send me offers and news about the loyalty programme by e-mail. I will confirm my address "
        "once more (double opt-in) and can withdraw at any time, here or with the link in every e-mail."),
    ConsentRecord.Purpose.SMS: _(
        "Yes, send me offers by text message (SMS) to the phone number in my profile. I can withdraw at "
        "any time, here or by replying STOP."),
    ConsentRecord.Purpose.PERSONALISED: _(
        "Yes, you may use my purchases and points history to choose offers that suit me (personalised "
        "offers). Without this you send me the same offers as everyone. I can withdraw at any time."),
    ConsentRecord.Purpose.PUSH: _(
        "Yes, send me offers and news as push notifications to the devices on which I switch them on "
        "(Profile, 'Notifications on this device'). I can withdraw at any time, here or with that switch."),
}
CONSENT_LABELS = {
    ConsentRecord.Purpose.EMAIL: _("Offers by e-mail"),
    ConsentRecord.Purpose.SMS: _("Offers by SMS"),
    ConsentRecord.Purpose.PERSONALISED: _("Personalised offers"),
    ConsentRecord.Purpose.PUSH: _("Offers as push notifications"),
}


class ProfileForm(forms.ModelForm):
    """Validation of the member's personal data; saved by services.member_update_profile."""

    country = forms.ChoiceField(label=_("country"), choices=COUNTRIES)

    class Meta:
        model = Member
        fields = list(PROFILE_FIELDS)
        widgets = {
            "birth_date": forms.DateInput(attrs={"type": "date", "autocomplete": "bday"}, format="%Y-%m-%d"),
            "first_name": forms.TextInput(attrs={"autocomplete": "given-name"}),
            "last_name": forms.TextInput(attrs={"autocomplete": "family-name"}),
            "phone": forms.TextInput(attrs={"type": "tel", "autocomplete": "tel"}),
            "street": forms.TextInput(attrs={"autocomplete": "street-address"}),
            "postal_code": forms.TextInput(attrs={"autocomplete": "postal-code", "inputmode": "numeric"}),
            "city": forms.TextInput(attrs={"autocomplete": "address-level2"}),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        current = self.instance.country if self.instance else ""
        if current and current not in dict(COUNTRIES):
            self.fields["country"].choices = [*COUNTRIES, (current, current)]
        self.fields["language"].help_text = _("For our e-mails and these pages.")

    def clean_birth_date(self):
        value = self.cleaned_data.get("birth_date")
        if value and value > timezone.localdate():
            raise forms.ValidationError(_("The birth date lies in the future."))
        return value

    def clean_phone(self):
        value = self.cleaned_data.get("phone", "").strip()
        allowed = set("+0123456789 /-()")
        if value and (set(value) - allowed or sum(char.isdigit() for char in value) < 6):
            raise forms.ValidationError(_("Please enter a phone number, e.g. +49 30 1234567."))
        return value


class ConsentForm(forms.Form):
    """One checkbox per channel. Unticked unless the member has said yes before: nothing is
    pre-ticked on the member's behalf."""

    def __init__(self, *args, current: dict | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        current = current or {}
        for purpose in ConsentRecord.Purpose.values:
            record = current.get(purpose)
            self.fields[purpose] = forms.BooleanField(
                label=CONSENT_LABELS[purpose], help_text=CONSENT_TEXTS[purpose], required=False,
                initial=bool(record is not None and record.granted),
            )

    def choices(self) -> dict[str, bool]:
        return {purpose: bool(self.cleaned_data.get(purpose)) for purpose in ConsentRecord.Purpose.values}


class DeleteAccountForm(forms.Form):
    confirm = forms.BooleanField(
        label=_("I understand that my account, my points and my vouchers will be deleted for good."),
        required=True,
    )
