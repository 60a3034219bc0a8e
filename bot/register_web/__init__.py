"""The register on the web: server-rendered pages of decisions, actions, meetings, questions
and attendance for signed-in members, with the secretariat's forms, calendar feeds and exports.

`build_register` returns a Starlette app that `bot.web` mounts under everything else.
"""
