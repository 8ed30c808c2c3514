"""The handlers of the app, one module per tab, and what they share (:mod:`app.tabs.shared`)."""
