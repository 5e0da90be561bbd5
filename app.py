"""`streamlit run app.py` from a checkout: the app lives in the package (reports/app.py); this runs it.
`harness report` is the way to serve it to others (it adds the login routes: see docs/security.md)."""

from reports.app import main

main()
