"""Feedback pages: the member's portal page (surveys to answer, complaints) and the page behind
the one-click links in survey e-mails.

Portal pages go through `members.views.portal_page` (login, no staff, the member from the
login). Invitations and complaints named in a URL are fetched through the member: someone
else's id is a 404, never a 403 that would confirm it exists.

The e-mail link works without a login: it carries the invitation and the score, signed
(feedback.links). GET shows the score already chosen with the comment box; the POST stores the
answer. Link scanners and mail previews fetch links but don't POST, so they can't answer in the
member's name (the same rule as the campaigns' unsubscribe page). In a browser a small script
(static/feedback/answer_link.js; the CSP allows no inline scripts) sends the form at once, so
the member counts from the click; without JavaScript they press the button. The page then says
the score is saved and lets the member change it or add a comment for
LOYALTY_SURVEY_CHANGE_DAYS (feedback.services.response_change).
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import translation
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from campaigns.views import masked_address
from core.errors import LoyaltyError
from members.views import portal_page

from . import links, selectors, services
from .errors import InvalidSurveyLink, InvitationUsed
from .forms import AnswerForm, ComplaintForm, ComplaintMessageForm
from .models import Complaint, Response, SurveyInvitation


@portal_page
def portal(request, member):
    return render(request, "feedback/portal.html", {
        "member": member,
        "invitations": list(selectors.open_invitations_of(member)),
        "complaints": list(selectors.complaints_of(member)),
    })


@portal_page
@require_http_methods(["GET", "POST"])
def answer(request, member, pk: int):
    invitation = get_object_or_404(selectors.open_invitations_of(member), pk=pk)
    form = AnswerForm(request.POST or None, survey=invitation.survey)
    if request.method == "POST" and form.is_valid():
        try:
            services.response_record(survey_id=invitation.survey_id, invitation_id=invitation.pk, member_id=member.pk,
                                     score=form.cleaned_data["score"], comment=form.cleaned_data["comment"],
                                     channel=Response.Channel.PORTAL, language=translation.get_language() or "")
        except LoyaltyError as error:
            messages.error(request, str(error))
        else:
            messages.success(request, _("Thank you for your feedback!"))
        return redirect("feedback:portal")
    return render(request, "feedback/answer.html", {"member": member, "invitation": invitation, "form": form})


@portal_page
@require_http_methods(["GET", "POST"])
def complaint_new(request, member):
    form = ComplaintForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        complaint = services.complaint_open(member_id=member.pk, channel=Complaint.Channel.PORTAL, **form.cleaned_data)
        messages.success(request, _("Thank you. We have received your complaint %(number)s and will get back to you.")
                         % {"number": complaint.number})
        return redirect("feedback:complaint", pk=complaint.pk)
    return render(request, "feedback/complaint_new.html", {"member": member, "form": form})


@portal_page
@require_http_methods(["GET", "POST"])
def complaint(request, member, pk: int):
    complaint = get_object_or_404(selectors.complaints_of(member), pk=pk)
    form = ComplaintMessageForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            services.complaint_member_message(complaint_id=complaint.pk, member_id=member.pk,
                                              body=form.cleaned_data["body"])
        except LoyaltyError as error:
            messages.error(request, str(error))
        else:
            messages.success(request, _("Your message has been sent."))
        return redirect("feedback:complaint", pk=complaint.pk)
    return render(request, "feedback/complaint.html", {
        "member": member, "complaint": complaint, "form": form,
        "messages_shown": list(selectors.messages_for_member(complaint)),
    })


# --- The one-click link from the e-mail (no login) ------------------------------------------------

def _link_problem(request, error: LoyaltyError, status: int):
    return render(request, "feedback/link_invalid.html", {"error": error}, status=status)


@require_http_methods(["GET", "POST"])
def answer_link(request, token: str):
    try:
        invitation_id, score = links.answer_from_token(token)
    except InvalidSurveyLink as error:
        return _link_problem(request, error, 404)
    except InvitationUsed as error:
        return _link_problem(request, error, 410)
    invitation = SurveyInvitation.objects.select_related("survey", "member").filter(pk=invitation_id).first()
    if invitation is None:
        return _link_problem(request, InvalidSurveyLink(), 404)
    with translation.override(invitation.member.language or settings.LANGUAGE_CODE):
        if invitation.answered_at is not None:
            return _answered(request, invitation, clicked=score)
        if not invitation.is_open() or not invitation.survey.active:
            return _link_problem(request, InvitationUsed(), 410)
        data = request.POST if request.method == "POST" else None
        form = AnswerForm(data, survey=invitation.survey, initial={"score": score})
        if request.method == "POST" and form.is_valid():
            try:
                response = services.response_record(
                    survey_id=invitation.survey_id, invitation_id=invitation.pk, score=form.cleaned_data["score"],
                    comment=form.cleaned_data["comment"], channel=Response.Channel.EMAIL,
                    language=invitation.member.language)
            except InvitationUsed:
                # Answered meanwhile (the automatic POST and a press of the button): a change then.
                return _answered(request, invitation, clicked=score)
            except LoyaltyError as error:
                return _link_problem(request, error, 422)
            return _saved_page(request, invitation, response, clicked=response.score)
        # GET only shows the page: link scanners fetch links but run no scripts and don't POST. In
        # a browser, feedback/answer_link.js sends this form at once, so the click is the answer.
        return render(request, "feedback/answer_link.html", {"invitation": invitation, "form": form, "score": score})


def _answered(request, invitation: SurveyInvitation, *, clicked: int):
    """The invitation has its answer: show it (GET) or change it (POST), while that is allowed."""
    response = Response.objects.filter(invitation_id=invitation.pk).select_related("survey").first()
    if response is None or not services.response_changeable(response) or not invitation.survey.active:
        return _link_problem(request, InvitationUsed(), 410)
    if request.method != "POST":
        return _saved_page(request, invitation, response, clicked=clicked)
    form = AnswerForm(request.POST, survey=invitation.survey)
    if not form.is_valid():
        return _saved_page(request, invitation, response, clicked=clicked, form=form)
    # The first page's form (marked "first") raced another answer, e.g. its automatic POST and a
    # press of its button: its empty comment box keeps the comment given, it doesn't erase it.
    comment = form.cleaned_data["comment"] or (None if request.POST.get("first") == "1" else "")
    try:
        response = services.response_change(invitation_id=invitation.pk, score=form.cleaned_data["score"],
                                            comment=comment)
    except InvitationUsed as error:
        return _link_problem(request, error, 410)
    except LoyaltyError as error:
        return _link_problem(request, error, 422)
    return _saved_page(request, invitation, response, clicked=response.score)


def _saved_page(request, invitation: SurveyInvitation, response: Response, *, clicked: int, form=None):
    """"Thank you – your score X is saved", with the form to change the score or add a comment."""
    form = form or AnswerForm(survey=invitation.survey, initial={"score": clicked, "comment": response.comment})
    return render(request, "feedback/answer_saved.html", {
        "invitation": invitation, "survey": invitation.survey, "response": response, "form": form,
        "clicked": clicked, "change_until": services.response_change_until(response)})


# RFC 8058 one-click unsubscribe, as campaigns.views.unsubscribe: mail clients POST without a
# session or a CSRF token; the signed token is the authorisation, the only effect a withdrawn consent.
@csrf_exempt
@require_http_methods(["GET", "POST"])
def unsubscribe_link(request, token: str):
    try:
        invitation_id = links.invitation_from_unsubscribe_token(token)
    except InvalidSurveyLink as error:
        return _link_problem(request, error, 404)
    invitation = SurveyInvitation.objects.select_related("member").filter(pk=invitation_id).first()
    if invitation is None:
        return _link_problem(request, InvalidSurveyLink(), 404)
    member = invitation.member
    with translation.override(member.language or settings.LANGUAGE_CODE):
        context = {"address": masked_address(member.email), "channel": _("e-mail")}
        if request.method == "POST":
            services.survey_unsubscribe(invitation_id=invitation.pk, ip_address=request.META.get("REMOTE_ADDR"))
            return render(request, "campaigns/unsubscribe_done.html", context)
        # GET only asks: link scanners and previews fetch links, they don't POST.
        return render(request, "campaigns/unsubscribe.html", context)
