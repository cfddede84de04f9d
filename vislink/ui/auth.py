"""Who is annotating. Anyone may search; edits need a signed-in annotator: an SQL account (bcrypt
password, ``vislink.graph.annotators``) or, when ``[auth]`` is configured in Streamlit's secrets, an
OIDC identity through ``st.login`` mapped to an existing annotator by e-mail (``VISLINK_OIDC_SELF_REGISTER``
lets an identity without one create it). Password sign-ins are throttled per name (``graph.annotators``)."""

from __future__ import annotations

import streamlit as st

from vislink.errors import VislinkError
from vislink.ui import services

KEY = "annotator"


def oidc_configured() -> bool:
    try:
        return "auth" in st.secrets
    except Exception:  # no secrets file at all: Streamlit raises instead of answering False
        return False


def current() -> services.SignedIn | None:
    signed = st.session_state.get(KEY)
    if signed is None and oidc_configured() and getattr(st.user, "is_logged_in", False):
        try:
            signed = services.sign_in_oidc(st.user.get("email"), st.user.get("name"), st.user.get("email_verified"))
            st.session_state[KEY] = signed
        except VislinkError as exc:
            st.sidebar.error(str(exc))
    return signed


def sidebar() -> services.SignedIn | None:
    """The account box in the sidebar: sign in / out."""
    signed = current()
    box = st.sidebar.container(border=True)
    if signed is not None:
        box.markdown(f"Signed in as **{signed.label}**")
        if box.button("Sign out", key="auth_sign_out"):
            st.session_state.pop(KEY, None)
            if signed.via == "oidc":
                st.logout()
            st.rerun()
        return signed
    box.caption("Searching needs no account; annotating does.")
    with box.form("sign_in", border=False):
        name = st.text_input("Annotator", key="auth_name")
        password = st.text_input("Password", type="password", key="auth_password")
        submitted = st.form_submit_button("Sign in")
    if submitted:
        try:
            st.session_state[KEY] = services.sign_in(name, password)
            st.rerun()
        except VislinkError as exc:
            box.error(str(exc))
    if oidc_configured() and box.button("Sign in with your identity provider", key="auth_oidc"):
        st.login()
    return None


def require() -> services.SignedIn | None:
    """The annotator, or a note that editing needs one (the page then shows read-only controls)."""
    signed = current()
    if signed is None:
        st.info("Sign in (sidebar) to annotate: grouping, linking and uploads need an annotator account.")
    return signed
