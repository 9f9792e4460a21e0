"""Portal forms: an answer to a survey, a new complaint, a message on a complaint."""

from __future__ import annotations

from django import forms
from django.utils.translation import gettext_lazy as _

from .models import Complaint

COMMENT_MAX = 4000


class AnswerForm(forms.Form):
    score = forms.TypedChoiceField(label=_("Your score"), coerce=int, widget=forms.RadioSelect)
    comment = forms.CharField(label=_("Anything you would like to add?"), required=False, max_length=COMMENT_MAX,
                              widget=forms.Textarea(attrs={"rows": 4}))

    def __init__(self, *args, survey, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["score"].choices = [(score, str(score)) for score in survey.scores]
        self.fields["score"].label = survey.question
        if survey.follow_up:
            self.fields["comment"].label = survey.follow_up


class ComplaintForm(forms.Form):
    category = forms.ChoiceField(label=_("What is it about?"), choices=Complaint.Category.choices)
    subject = forms.CharField(label=_("Subject"), max_length=200)
    description = forms.CharField(label=_("What happened?"), max_length=COMMENT_MAX,
                                  widget=forms.Textarea(attrs={"rows": 6}))


class ComplaintMessageForm(forms.Form):
    body = forms.CharField(label=_("Your message"), max_length=COMMENT_MAX, widget=forms.Textarea(attrs={"rows": 4}))
