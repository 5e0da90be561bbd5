"""The script Streamlit runs for the installed app (reports/server.py serves it): it runs reports.app.main.
It lives in a folder of its own because Streamlit treats a `pages/` folder beside its script as pages of
an old-style multipage app."""

from reports.app import main

main()
