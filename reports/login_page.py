"""The HTML of the login and password-change pages (served by reports/auth_routes.py). Every value shown
is escaped; the pages load nothing from elsewhere."""

from __future__ import annotations

from html import escape

from starlette.responses import HTMLResponse

from reports.access import LOGIN_PATH, safe_next

_STYLE = """body{font-family:system-ui,sans-serif;background:#f6f7f9;margin:0}
main{max-width:22rem;margin:12vh auto;background:#fff;padding:2rem;border-radius:.6rem;box-shadow:0 1px 4px #0002}
h1{font-size:1.4rem;margin-top:0}label{display:block;margin:.8rem 0 .2rem}
input{width:100%;box-sizing:border-box;padding:.5rem;font-size:1rem}
button{margin-top:1.2rem;width:100%;padding:.6rem;font-size:1rem;background:#ff4b4b;color:#fff;border:0;
border-radius:.4rem}.error{color:#a00;background:#fee;padding:.5rem;border-radius:.3rem}.hint{color:#666}"""


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    text = (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{escape(title)} · harness</title>"
            f"<meta name=viewport content='width=device-width'><style>{_STYLE}</style></head>"
            f"<body><main>{body}</main></body></html>")
    return HTMLResponse(text, status_code=status,
                        headers={"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; "
                                                            "form-action 'self'; frame-ancestors 'none'"})


def _error(message: str | None) -> str:
    return f"<p class=error role=alert>{escape(message)}</p>" if message else ""


def login_page(next_path: str | None, message: str | None, status: int = 200) -> HTMLResponse:
    target = escape(safe_next(next_path))
    return _page("Log in", f"""<h1>Log in</h1>{_error(message)}
<form method=post action="{LOGIN_PATH}">
<input type=hidden name=next value="{target}">
<label for=name>Name</label><input id=name name=name autocomplete=username required autofocus>
<label for=password>Password</label>
<input id=password name=password type=password autocomplete=current-password required>
<button type=submit>Log in</button></form>
<p class=hint>Ask an admin for an account: <code>harness review add-reviewer NAME</code>.</p>""", status)


def change_page(next_path: str | None, name: str, token: str, message: str | None) -> HTMLResponse:
    target = escape(safe_next(next_path))
    return _page("Choose a password", f"""<h1>Choose your password</h1>
<p>Hello {escape(name)}: the password you were given works once. Choose your own (10 characters or more).</p>
{_error(message)}<form method=post action="/auth/password">
<input type=hidden name=next value="{target}"><input type=hidden name=token value="{escape(token)}">
<label for=new_password>New password</label>
<input id=new_password name=new_password type=password autocomplete=new-password required minlength=10>
<label for=confirm_password>New password again</label>
<input id=confirm_password name=confirm_password type=password autocomplete=new-password required>
<button type=submit>Save and continue</button></form>""", 200 if message is None else 400)


def message_page(title: str, message: str, status: int) -> HTMLResponse:
    return _page(title, f"<h1>{escape(title)}</h1><p>{escape(message)}</p><p><a href='{LOGIN_PATH}'>Log in</a></p>",
                 status)
