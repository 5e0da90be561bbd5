"""The served app: Streamlit's app.py behind login routes. `harness report` runs `streamlit run` on this file.

Every request but the login pages and Streamlit's static assets needs a live session cookie when the
server is in `accounts` mode (see reports/access.py): pages redirect to the login form (keeping the
address asked for), the websocket and media downloads are refused. Logging in sets an HttpOnly,
SameSite=Strict cookie holding a signed, expiring token (harness.review.sessions).
"""

from __future__ import annotations

import os
from pathlib import Path

import streamlit as st
from starlette.middleware import Middleware

from reports.auth_routes import LoginRequired, auth_routes

os.environ["HARNESS_LOGIN_ROUTES"] = "1"

SCRIPT = Path(__file__).resolve().parent / "entry" / "app.py"
app = st.App(SCRIPT, routes=auth_routes(), middleware=[Middleware(LoginRequired)])
