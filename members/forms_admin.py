"""Forms for the operator console's member actions."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from .models import Member, Tier


class AdjustPointsForm(forms.Form):
    points = forms.IntegerField(
        label=_("Points"), help_text=_("Positive to credit, negative to debit."),
        min_value=-10_000_000, max_value=10_000_000,
    )
    reason = forms.CharField(label=_("Reason"), max_length=255, widget=forms.Textarea(attrs={"rows": 3}))

    def clean_points(self):
        points = self.cleaned_data["points"]
        if points == 0:
            raise forms.ValidationError(_("An adjustment must change the balance."))
        return points


class TierOverrideForm(forms.Form):
    tier = forms.ModelChoiceField(label=_("Tier"), queryset=Tier.objects.points_based(),
                                  help_text=_("Paid and invitation tiers are sold or given as a membership."))
    until = forms.DateField(
        label=_("Granted until"), required=False,
        help_text=_("Leave empty for a lasting override; with a date the tier falls back to the earned one after it."),
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    reason = forms.CharField(label=_("Reason"), max_length=255, widget=forms.Textarea(attrs={"rows": 3}))


class MergeForm(forms.Form):
    duplicate = forms.CharField(
        label=_("Duplicate"), max_length=100,
        help_text=_("Customer number, card number or e-mail of the duplicate that goes into this member."),
    )
    reason = forms.CharField(label=_("Reason"), max_length=255, required=False)

    def __init__(self, *args, survivor: Member, **kwargs):
        super().__init__(*args, **kwargs)
        self.survivor = survivor

    def clean_duplicate(self):
        matches = list(Member.objects.find(self.cleaned_data["duplicate"]).exclude(pk=self.survivor.pk)[:2])
        if not matches:
            raise forms.ValidationError(_("No other member matches this."))
        if len(matches) > 1:
            raise forms.ValidationError(_("More than one member matches; use the customer number."))
        return matches[0]


class EraseMemberForm(forms.Form):
    confirm = forms.BooleanField(
        label=_("The member asked to be erased, and I have checked who they are. Erasure cannot be undone."),
        required=True,
    )


class ExportMemberDataForm(forms.Form):
    confirm = forms.BooleanField(
        label=_("The member asked for their data, and I have checked who they are."),
        required=True,
    )
