"""Joint-scrutiny questions: the questions themselves (`core`), meetings and their windows
(`windows`), the pack built at close (`pack`), posts through the outbox (`posts`) and direct
notices to askers and supporters (`notices`)."""
