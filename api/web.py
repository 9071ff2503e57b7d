"""The web app's page layer: one way to render a page for a person.

Every page is a Jinja2 template (``infra.pages``: autoescaped, translated) that
extends ``api/templates/base.html``. A route takes ``page: Page`` and returns
``page.render("area/name.html", title=..., ...)``. The page knows

* its language: ``?lang=`` (the switcher's links; remembered in a cookie), else
  the ``golos_lang`` cookie, else the browser's ``Accept-Language``, else English;
* its caller (``page.principal``: an account holder or None), for the menu;
* the CSRF token its forms carry (``{{ csrf_field() }}`` in a form;
  ``api.deps.check_csrf`` checks it), and sets the browser's CSRF cookie when it
  has none yet.

Assets are served from ``api/static`` at ``/static`` (the vendored htmx, the
stylesheet, the voters' upload script): nothing is loaded from anywhere else, the
platform is used where outside services are blocked.
"""

from __future__ import annotations

import functools
import secrets
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

import jinja2
from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup

from api.accounts.schemas import Principal, Role
from api.deps import (
    CSRF_COOKIE,
    CSRF_FIELD,
    AppSettings,
    MaybePrincipal,
    csrf_token_for,
)
from api.errors import GolosError
from infra.pages import (
    DEFAULT_LANGUAGE,
    LANGUAGES,
    environment,
    negotiate_language,
    translations,
)
from infra.settings import Settings

STATIC_DIR = Path(__file__).resolve().parent / "static"
LANG_COOKIE = "golos_lang"
# The packages whose templates/ folder holds pages, searched in this order: the
# base layout, each area of the web app, then the report's templates.
PAGE_PACKAGES: tuple[str, ...] = (
    "api",
    "api.accounts",
    "api.voters",
    "api.review",
    "api.public",
    "api.analysts",
    "api.protocols",
    "tally",
)
LANGUAGE_NAMES = {"ru": "Русский", "be": "Беларуская", "en": "English"}
# Every page's security headers. Scripts only from the platform's own files (no
# inline script: an injected one cannot run); styles also inline (style attributes
# in SVG and htmx); images also as data: URLs; no framing (clickjacking); forms post
# only back to the platform; the address of a page is never sent elsewhere.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data: blob:; connect-src 'self'; frame-ancestors 'none'; "
        "form-action 'self'; base-uri 'none'; object-src 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    # Pages show personal data (a review queue, a receipt): never cache them.
    "Cache-Control": "no-store",
}


@functools.cache
def web_environment(lang: str) -> jinja2.Environment:
    """The pages' Jinja2 environment for one language, built once per process."""
    packages = tuple(p for p in PAGE_PACKAGES if _has_templates(p))
    env = environment(lang, packages)
    env.globals["LANGUAGE_NAMES"] = LANGUAGE_NAMES
    env.globals["LANGUAGES"] = LANGUAGES
    env.globals["Role"] = Role
    return env


def _has_templates(package: str) -> bool:
    folder = Path(__file__).resolve().parent.parent.joinpath(*package.split("."), "templates")
    return folder.is_dir()


def choose_language(query: str | None, cookie: str | None, accept_language: str | None) -> str:
    """The page's language: the switcher's choice, then the remembered one, then the
    browser's wishes, then English. Pure."""
    for candidate in (query, cookie):
        if candidate in LANGUAGES:
            return str(candidate)
    return negotiate_language(accept_language, DEFAULT_LANGUAGE)


class PageContext:
    """What a page route needs to answer with a page (see the module docstring)."""

    def __init__(self, request: Request, settings: Settings, principal: Principal | None):
        self.request = request
        self.settings = settings
        self.principal = principal
        query_lang = request.query_params.get("lang")
        self.lang = choose_language(
            query_lang, request.cookies.get(LANG_COOKIE), request.headers.get("accept-language")
        )
        self._remember_lang = query_lang in LANGUAGES
        # Cookies are Secure when the site is served over HTTPS or configured so
        # (behind a proxy that terminates TLS, set GOLOS_SECURE_COOKIES).
        self.secure = settings.secure_cookies or request.url.scheme == "https"
        nonce = request.cookies.get(CSRF_COOKIE, "")
        self._new_nonce = "" if nonce else secrets.token_urlsafe(32)
        self.csrf_token = csrf_token_for(
            settings,
            nonce or self._new_nonce,
            principal.session_sha256 if principal is not None else None,
        )

    def gettext(self, message: str, **values: Any) -> str:
        """A message translated into the page's language (for text built in Python)."""
        text = translations(self.lang).gettext(message)
        return text % values if values else text

    def render(self, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        env = web_environment(self.lang)
        token = self.csrf_token

        def csrf_field() -> Markup:
            return Markup('<input type="hidden" name="{}" value="{}">').format(CSRF_FIELD, token)

        html = env.get_template(template).render(
            request=self.request,
            principal=self.principal,
            csrf_token=token,
            csrf_field=csrf_field,
            path=self.request.url.path,
            **context,
        )
        response = HTMLResponse(html, status_code=status_code)
        self.set_cookies(response)
        return response

    def set_cookies(self, response: Response) -> None:
        secure = self.secure
        if self._new_nonce:
            # Lax, not Strict: a page opened from a link in a messenger would
            # otherwise get no cookie, make a new one and break the forms of the
            # tabs already open. The token is bound to the session anyway.
            response.set_cookie(
                CSRF_COOKIE, self._new_nonce, httponly=True, samesite="lax", secure=secure
            )
        if self._remember_lang:
            response.set_cookie(
                LANG_COOKIE, self.lang, max_age=365 * 86400, samesite="lax", secure=secure
            )
        for name, value in PAGE_HEADERS.items():
            response.headers.setdefault(name, value)
        if secure:  # once over HTTPS, only ever over HTTPS (no downgrade to plant cookies)
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")


def page_dep(request: Request, settings: AppSettings, principal: MaybePrincipal) -> PageContext:
    return PageContext(request, settings, principal)


Page = Annotated[PageContext, Depends(page_dep)]


def is_page_request(request: Request) -> bool:
    """Whether a request is for a page (answered in HTML) rather than the JSON API. Pure."""
    path = request.url.path
    return not (
        path.startswith(("/v1/", "/static/", "/docs", "/redoc"))
        or path in ("/openapi.json", "/healthz")
    )


def error_page(request: Request, settings: Settings, error: GolosError) -> Response:
    """A domain error on a page: 401 sends the browser to log in and come back; any
    other is a page in the visitor's language saying what was wrong."""
    if error.status_code == 401:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
    page = PageContext(request, settings, None)
    response = page.render("error.html", status_code=error.status_code, error=error)
    for name, value in error.headers().items():
        response.headers[name] = value
    return response
