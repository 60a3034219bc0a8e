"""The Teams app's invokes on the Teams SDK: dialogs (task modules), `Action.Execute` buttons,
the message extension and the welcome on install. Each runs the same neutral interactions as
Slack's modals, buttons and shortcuts (`ScrutinyApp.interact`), which check the member's role
every time.

- **Dialogs.** A reply whose surface is "modal" is a form. Teams opens a dialog only when asked
  by the member (a `task/fetch` invoke), so a typed command answering with a form (`ask`) gets
  a card with an "Open the form" button, and a card button that opens a form is sent as an
  `Action.Submit` with `msteams.type = task/fetch` (`dialog_buttons`). `task/fetch` answers
  `continue` with the form card; `task/submit` runs the form's interaction: a refused form is
  shown again with each field's error under it (the form re-made by the same opener, holding
  what the member typed), and success closes the dialog and posts the confirmation card in the
  conversation. The opener travels in the form's submit data (`open`), as Slack keeps a
  modal's context in `private_metadata`.
- **Buttons.** `adaptiveCard/action` runs the interaction named by the verb with the button's
  data and answers with the resulting card, which Teams shows in place of the pressed one (to
  the member who pressed it). A private answer's refresh is answered here too
  (`bot.platforms.teams.private`): run again when its command only reads, read from
  `bot.private_answers` when it changed something.
- **Message extension.** "Ask as a scrutiny question" (`askQuestion`) opens the ask form with
  the message's words as the draft, as Slack's message shortcut does (`question.draft`); its
  submit is a dialog submit. "Find a decision or action" (`findRecord`) runs `find` for the
  member alone (their own clearance, never a channel's) and offers each decision or action
  found as its detail card; inserting one into a conversation is the member's own choice.
- **Welcome.** When the app is installed (personal or team), or the bot is added to a
  conversation, the member who did it gets the welcome card once (the handler remembers).
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import logging
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from microsoft_teams.api.activities.conversation.conversation_update import (
    ConversationUpdateActivity,
)
from microsoft_teams.api.activities.install_update.add import InstalledActivity
from microsoft_teams.api.activities.invoke.adaptive_card.action import AdaptiveCardInvokeActivity
from microsoft_teams.api.activities.invoke.message_extension.fetch_task import (
    MessageExtensionFetchTaskInvokeActivity,
)
from microsoft_teams.api.activities.invoke.message_extension.query import (
    MessageExtensionQueryInvokeActivity,
)
from microsoft_teams.api.activities.invoke.message_extension.submit_action import (
    MessageExtensionSubmitActionInvokeActivity,
)
from microsoft_teams.api.activities.invoke.task.task_fetch import TaskFetchInvokeActivity
from microsoft_teams.api.activities.invoke.task.task_submit import TaskSubmitInvokeActivity
from microsoft_teams.api.activities.message.message import MessageActivityInput
from microsoft_teams.api.models.attachment.attachment import Attachment
from microsoft_teams.api.models.invoke_response import InvokeResponse
from microsoft_teams.api.models.messaging_extension.messaging_extension_action_response import (
    MessagingExtensionActionResponse,
)
from microsoft_teams.api.models.messaging_extension.messaging_extension_attachment import (
    MessagingExtensionAttachment,
)
from microsoft_teams.api.models.messaging_extension.messaging_extension_response import (
    MessagingExtensionResponse,
)
from microsoft_teams.api.models.messaging_extension.messaging_extension_result import (
    MessagingExtensionResult,
)
from microsoft_teams.api.models.task_module.task_module_continue_response import (
    TaskModuleContinueResponse,
)
from microsoft_teams.api.models.task_module.task_module_message_response import (
    TaskModuleMessageResponse,
)
from microsoft_teams.api.models.task_module.task_module_response import TaskModuleResponse
from microsoft_teams.api.models.task_module.task_module_task_info import CardTaskModuleTaskInfo
from microsoft_teams.apps import ActivityContext, App

import bot.platforms.teams.private as private
from bot import private_answers
from bot.app import Outcome, ScrutinyApp
from bot.db import unit_of_work
from bot.domain import Platform
from bot.i18n import Translator
from bot.messages import Request
from bot.outbox import SendError
from bot.platforms.teams.activities import message_words
from bot.platforms.teams.app_package import ASK_COMMAND_ID, FIND_COMMAND_ID, FIND_PARAMETER
from bot.platforms.teams.delivery import send_direct
from bot.rendering.teams_cards import CARD_CONTENT_TYPE, Card, fit_card, join_cards, text_card
from handlers.questions import ANSWER_FORM, ASK_FORM, DRAFT, MERGE_FORM, REJECT_FORM
from handlers.register import OPEN_UPDATE_FORM
from handlers.welcome import WELCOME

log = logging.getLogger(__name__)

FORMAT = "teams.json"
FORM_OPENERS = frozenset({ASK_FORM, REJECT_FORM, MERGE_FORM, ANSWER_FORM, OPEN_UPDATE_FORM})
"""Buttons whose interaction answers with a form: Teams must open them as dialogs."""
OPENER = "open"
"""The key in a dialog's submit data saying how its form was made, to show it again."""
TASK_FETCH = {"type": "task/fetch"}
MAX_FOUND = 10
"""Search results offered by the message extension (Teams shows a short list)."""

Where = Callable[[Any, str, dict[str, Any]], Request]
"""Builds the neutral request for an activity, its text and its values."""
Clock = Callable[[], datetime]


# -- cards --------------------------------------------------------------------------------------
def _actions(node: Any) -> Iterator[dict[str, Any]]:
    """Every action of a card, depth first."""
    if isinstance(node, dict):
        if str(node.get("type", "")).startswith("Action."):
            yield node
        for value in node.values():
            yield from _actions(value)
    elif isinstance(node, list):
        for item in node:
            yield from _actions(item)


def dialog_buttons(card: Card) -> Card:
    """`card` with each button that opens a form turned into one that opens a dialog
    (`Action.Execute` cannot: Teams sends `task/fetch` only for an `Action.Submit` saying so)."""
    result = copy.deepcopy(card)
    for action in _actions(result):
        if action.get("type") == "Action.Execute" and action.get("verb") in FORM_OPENERS:
            data = {"msteams": TASK_FETCH, "verb": action.pop("verb"), **action.get("data", {})}
            action.update(type="Action.Submit", data=data)
    return result


def message_card(outcome: Outcome, command: str) -> Card:
    """The card a reply to `command` is sent as in a conversation. A form cannot be shown
    there: the text (which says how to give the same values inline) and a button opening the
    form as a dialog."""
    t = Translator(outcome.languages[0])
    if outcome.reply.surface != "modal":
        return dialog_buttons(fit_card(join_cards(outcome.documents), outcome.text, t))
    shown = text_card(outcome.text, t)
    shown["actions"] = [
        {
            "type": "Action.Submit",
            "title": t._("Open the form"),
            "data": {"msteams": TASK_FETCH, "command": command},
        }
    ]
    return shown


def form_card(outcome: Outcome, opener: dict[str, Any]) -> Card:
    """The dialog's card: the form in the reader's first language (one set of inputs), its
    submit carrying how the form was opened."""
    card = copy.deepcopy(outcome.documents[0])
    for action in _actions(card):
        if action.get("type") == "Action.Submit" and "form" in action.get("data", {}):
            action["data"][OPENER] = opener
    return fit_card(card, outcome.text, Translator(outcome.languages[0]))


def _card_response(card: Card) -> InvokeResponse[Any]:
    """An `adaptiveCard/action` answer showing `card` to the member who invoked it."""
    body = {"statusCode": 200, "type": CARD_CONTENT_TYPE, "value": card}
    return InvokeResponse[Any](status=200, body=body)


def _channel(conversation: str) -> str:
    """The channel a conversation id names (a channel thread's id adds `;messageid=...`)."""
    return conversation.split(";", 1)[0]


def _attachment(card: Card) -> Attachment:
    return Attachment(content_type=CARD_CONTENT_TYPE, content=card)


def _continue(card: Card, title: str) -> TaskModuleContinueResponse:
    return TaskModuleContinueResponse(
        value=CardTaskModuleTaskInfo(title=title, card=_attachment(card))
    )


def _title(card: Card) -> str:
    """A dialog's title: its card's first line."""
    for element in card.get("body", []):
        if element.get("type") == "TextBlock":
            return str(element["text"])[:80]
    return ""


def _form_values(data: Any) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """A submitted dialog's form id, the values its handler reads and how it was opened."""
    values = dict(data) if isinstance(data, dict) else {}
    values.pop("msteams", None)
    opener = values.pop(OPENER, None)
    form = str(values.pop("form", "") or "")
    return form, values, opener if isinstance(opener, dict) else {}


class Invokes:
    """The bot's invoke handlers, registered on the SDK's `App` by `register`."""

    def __init__(self, app: ScrutinyApp, where: Where, clock: Clock) -> None:
        self.app = app
        self.where = where
        self.clock = clock

    def register(self, sdk: App) -> None:
        """Route the invokes and installs to their handlers through the SDK's router."""
        sdk.on_dialog_open(self.dialog_open)
        sdk.on_dialog_submit(self.dialog_submit)
        sdk.on_card_action(self.card_action)
        sdk.on_message_ext_open(self.extension_open)
        sdk.on_message_ext_submit(self.extension_submit)
        sdk.on_message_ext_query(self.extension_query)
        sdk.on_install_add(self.installed)
        sdk.on_conversation_update(self.conversation_update)

    # -- running the neutral app ---------------------------------------------------------------
    async def _interact(
        self, activity: Any, verb: str, text: str = "", values: dict[str, Any] | None = None
    ) -> Outcome:
        request = self.where(activity, text, dict(values or {}))
        return await asyncio.to_thread(self.app.interact, verb, request, FORMAT)

    async def _dispatch(self, activity: Any, text: str, *, alone: bool = False) -> Outcome:
        request = self.where(activity, text, {})
        if alone:
            # Read for the member alone: their own clearance, not the conversation's.
            request = dataclasses.replace(request, channel_id=None, is_direct=True)
        return await asyncio.to_thread(self.app.dispatch, request, FORMAT)

    async def _open(self, activity: Any, opener: dict[str, Any]) -> Outcome:
        """Make a form again the way it was first made: a command, a button or a draft."""
        if "command" in opener:
            return await self._dispatch(activity, str(opener["command"]))
        values = {"value": opener.get("value", "")}
        text = str(opener.get("draft", ""))
        return await self._interact(activity, str(opener.get("verb", "")), text, values)

    # -- dialogs ------------------------------------------------------------------------------
    async def dialog_open(
        self, ctx: ActivityContext[TaskFetchInvokeActivity]
    ) -> TaskModuleResponse:
        """`task/fetch`: the form a button or an "Open the form" card asked for."""
        data = ctx.activity.value.data if ctx.activity.value else None
        data = data if isinstance(data, dict) else {}
        if "command" in data:
            opener: dict[str, Any] = {"command": str(data["command"])}
        else:
            opener = {"verb": str(data.get("verb", "")), "value": data.get("value", "")}
        return TaskModuleResponse(
            task=self._form_task(await self._open(ctx.activity, opener), opener)
        )

    def _form_task(
        self, outcome: Outcome, opener: dict[str, Any]
    ) -> TaskModuleContinueResponse | TaskModuleMessageResponse:
        """A form's dialog, or the reason there is none (a refused role, a closed window)."""
        if outcome.reply.surface != "modal":
            return TaskModuleMessageResponse(value=outcome.text)
        card = form_card(outcome, opener)
        return _continue(card, _title(card))

    async def _submitted(
        self, activity: Any, data: Any
    ) -> tuple[Outcome, TaskModuleContinueResponse | TaskModuleMessageResponse | None]:
        """Run a submitted form. The dialog's next step: the form again with its errors, a
        message when it was refused as a whole, or None (close) when it was done."""
        form, values, opener = _form_values(data)
        outcome = await self._interact(activity, form, "", values)
        errors = outcome.reply.field_errors
        if errors and opener:
            again = await self._open(activity, opener)
            if again.reply.surface == "modal":
                reply = dataclasses.replace(
                    again.reply,
                    field_errors=errors,
                    context={**again.reply.context, "submitted": values},
                )
                document = self.app.renderer.document(
                    reply, FORMAT, again.languages[0], Platform.TEAMS
                )
                shown = dataclasses.replace(again, reply=reply, documents=[document])
                return outcome, self._form_task(shown, opener)
        if outcome.reply.template == "common/error":
            return outcome, TaskModuleMessageResponse(value=outcome.text)
        return outcome, None

    async def dialog_submit(
        self, ctx: ActivityContext[TaskSubmitInvokeActivity]
    ) -> TaskModuleResponse:
        """`task/submit`: the form's interaction; the confirmation is posted in the
        conversation when it is done."""
        data = ctx.activity.value.data if ctx.activity.value else None
        outcome, step = await self._submitted(ctx.activity, data)
        if step is None:
            try:
                await self._post(ctx, outcome, "a dialog's confirmation")
            except SendError:
                # The form's change is made: say so in the dialog rather than fail it, which
                # would invite the member to submit it again.
                return TaskModuleResponse(task=TaskModuleMessageResponse(value=outcome.text))
        return TaskModuleResponse(task=step)

    # -- buttons --------------------------------------------------------------------------------
    async def card_action(
        self, ctx: ActivityContext[AdaptiveCardInvokeActivity]
    ) -> InvokeResponse[Any]:
        """`adaptiveCard/action`: the button's interaction; its card replaces the pressed one
        (for the member who pressed it alone). A private answer's refresh, and its buttons,
        are `private`'s."""
        action = ctx.activity.value.action
        verb, data = action.verb or "", dict(action.data)
        if verb == private.VERB:
            return _card_response(await self._private_answer(ctx.activity, data))
        if verb == private.STORED_VERB:
            stored = await asyncio.to_thread(
                self._stored_answer, ctx.activity, data.get(private.TOKEN)
            )
            return _card_response(stored)
        marker = data.pop(private.KEY, None)
        outcome = await self._interact(ctx.activity, verb, "", data)
        if outcome.reply.surface == "modal":
            # A form cannot open from here: say how to give the same values instead.
            body = {
                "statusCode": 200,
                "type": "application/vnd.microsoft.activity.message",
                "value": outcome.text,
            }
            return InvokeResponse[Any](status=200, body=body)
        card = message_card(outcome, "")
        if private.is_asker(marker, ctx.activity.from_):
            again = (verb, data) if self.app.interacts_read_only(verb) else None
            language = outcome.languages[0]
            card = private.button_card(card, outcome.text, language, marker, again)
        return _card_response(card)

    async def _private_answer(self, activity: Any, data: dict[str, Any]) -> Card:
        """A private question's refresh: the answer for the asker, run again where the card
        is; the base card for anyone else (whatever the data says, the invoker is checked)."""
        asked = private.Asked.from_data(data)
        if asked is None:
            # Not a question this bot made: the app's answer for a button it does not know.
            unknown = await self._interact(activity, private.VERB)
            return message_card(unknown, "")
        if not asked.asked_by(activity.from_) or not self.app.reads_only(asked.words):
            return private.base_card(self.app.renderer, asked)
        outcome = await self._dispatch(activity, asked.words)
        return private.answer_card(message_card(outcome, asked.words), outcome.text, asked)

    def _stored_answer(self, activity: Any, token: Any) -> Card:
        """A stored answer's refresh: the answer its command gave, for the asker (never run
        again); the base card for anyone else; "no longer available" when the token is
        unknown, expired or from another channel (whose base card would show the words where
        they were not asked)."""
        days = self.app.settings.private_answer_days
        sender = activity.from_
        with unit_of_work(self.app.sessions, writes=False) as session:
            stored = private_answers.find(
                session, token, platform=Platform.TEAMS, now=self.clock(), days=days
            )
            if stored is not None and _channel(stored.conversation) == _channel(
                activity.conversation.id
            ):
                asker = {"user": stored.user_id, "aad": stored.directory_id}
                return dict(stored.card if private.is_asker(asker, sender) else stored.base)
            member = self.app.find_member(session, Platform.TEAMS, sender.aad_object_id or "")
            language = self.app.settings.scrutiny_language if member is None else member.language
        return private.gone_card(language, days)

    # -- the message extension ----------------------------------------------------------------
    async def extension_open(
        self, ctx: ActivityContext[MessageExtensionFetchTaskInvokeActivity]
    ) -> MessagingExtensionActionResponse:
        """`composeExtension/fetchTask` for "Ask as a scrutiny question": the ask form with
        the message's words as the draft."""
        value = ctx.activity.value
        if value.command_id != ASK_COMMAND_ID:
            # Not the bot's command: the app's answer for an interaction it does not know.
            unknown = await self._interact(ctx.activity, f"teams.{value.command_id}")
            return MessagingExtensionActionResponse(
                task=TaskModuleMessageResponse(value=unknown.text)
            )
        body = value.message_payload.body if value.message_payload else None
        draft = message_words(body.content if body else "")
        opener = {"verb": DRAFT, "draft": draft}
        outcome = await self._interact(ctx.activity, DRAFT, draft)
        return MessagingExtensionActionResponse(task=self._form_task(outcome, opener))

    async def extension_submit(
        self, ctx: ActivityContext[MessageExtensionSubmitActionInvokeActivity]
    ) -> MessagingExtensionActionResponse:
        """`composeExtension/submitAction`: the ask form submitted; the answer is shown to
        the member in the dialog rather than posted where the message was."""
        outcome, step = await self._submitted(ctx.activity, ctx.activity.value.data)
        return MessagingExtensionActionResponse(
            task=step or TaskModuleMessageResponse(value=outcome.text)
        )

    async def extension_query(
        self, ctx: ActivityContext[MessageExtensionQueryInvokeActivity]
    ) -> MessagingExtensionResponse:
        """`composeExtension/query` for "Find a decision or action": the records `find`
        shows the member alone, each as its detail card with a one-line preview."""
        value = ctx.activity.value
        words = " ".join(
            str(p.value or "")
            for p in value.parameters or []
            if p.name == FIND_PARAMETER and value.command_id == FIND_COMMAND_ID
        ).strip()
        attachments: list[MessagingExtensionAttachment] = []
        if words:
            found = await self._dispatch(ctx.activity, f"find {words}", alone=True)
            for kind, ref, title in _found_records(found)[:MAX_FOUND]:
                detail = await self._dispatch(ctx.activity, f"{kind} {ref}", alone=True)
                attachments.append(
                    MessagingExtensionAttachment(
                        content_type=CARD_CONTENT_TYPE,
                        content=message_card(detail, ""),
                        preview=Attachment(
                            content_type="application/vnd.microsoft.card.thumbnail",
                            content={"title": ref, "text": title},
                        ),
                    )
                )
        return MessagingExtensionResponse(
            compose_extension=MessagingExtensionResult(
                type="result", attachment_layout="list", attachments=attachments
            )
        )

    # -- the welcome ------------------------------------------------------------------------------
    async def installed(self, ctx: ActivityContext[InstalledActivity]) -> None:
        """The app was installed: welcome whoever installed it."""
        await self._welcome(ctx)

    async def conversation_update(self, ctx: ActivityContext[ConversationUpdateActivity]) -> None:
        """The bot was added to a conversation: welcome whoever added it."""
        added = ctx.activity.members_added or []
        if any(member.id == ctx.activity.recipient.id for member in added):
            await self._welcome(ctx)

    async def _welcome(self, ctx: ActivityContext[Any]) -> None:
        outcome = await self._interact(ctx.activity, WELCOME)
        # Nothing on a later install, nor for someone the bot does not know (it cannot
        # remember them, and would tell them who to ask every time).
        if outcome.reply.surface == "message" and outcome.reply.template == "welcome/welcome":
            await self._post(ctx, outcome, "the welcome")

    @staticmethod
    async def _post(ctx: ActivityContext[Any], outcome: Outcome, what: str) -> None:
        """Post the outcome's card in the activity's conversation, retried as a direct reply."""
        card = _attachment(message_card(outcome, ""))
        await send_direct(
            lambda: ctx.send(MessageActivityInput().add_attachments(card)),
            f"{what} to {ctx.activity.from_.aad_object_id} in {ctx.activity.conversation.id}",
        )


def _found_records(outcome: Outcome) -> list[tuple[str, str, str]]:
    """(command, ref, title) of each decision and action a `find` reply shows."""
    context = outcome.reply.context
    records: list[tuple[str, str, str]] = []
    for key, kind in (("decision", "decision"), ("action", "action")):
        item = context.get(key)
        if item is not None:
            records.append((kind, item.ref, item.title))
    for key, kind in (("decisions", "decision"), ("actions", "action")):
        page = context.get(key)
        for item in getattr(page, "items", None) or []:
            records.append((kind, item.ref, item.title))
    return records
