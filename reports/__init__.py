"""The Streamlit report: pure functions that turn store queries into frames and charts (this package),
and pages that lay them out (reports/pages/). `app.py` holds navigation and login only."""
