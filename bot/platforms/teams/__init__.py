"""Microsoft Teams: the Teams app's bot on the Teams SDK, and the older outgoing webhook."""
