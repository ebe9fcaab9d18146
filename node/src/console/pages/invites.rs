//! Invites: list, create (the token is shown once), revoke.

use super::*;

/// `GET /invites`.
pub(in crate::console) async fn invites(
    State(state): State<ConsoleState>,
    Extension(session): Extension<Session>,
) -> Response {
    invites_page(&state, &session, Banner::None, None).await
}

async fn invites_page(
    state: &ConsoleState,
    session: &Session,
    banner: Banner,
    created: Option<InviteCreated>,
) -> Response {
    let list: Vec<InviteEntry> = match ask(state, AdminRequest::InviteList).await {
        Ok(l) => l,
        Err(e) => return page(state, session, "/invites", Banner::Error(e), html! {}),
    };
    let now = crate::store::unix_now();
    let body = html! {
        @if let Some(c) = &created {
            fieldset #created {
                legend { "Invite " (c.invite_id) " for a " (c.role.as_str()) }
                p { "Send this line to the other node's admin (it works " (c.uses) " time(s), until " (when(Some(c.expires_at))) " UTC). It is shown only now." }
                textarea.token #token readonly rows="3" { (c.token) }
                button type="button" data-copy="token" { "Copy" }
            }
        }
        fieldset {
            legend { "Create an invite" }
            form method="post" action="/invites/create" {
                (csrf(session))
                label { "The joiner becomes " select name="role" { option value="partner" { "a partner" } option value="subscriber" { "a subscriber" } } }
                " "
                label { "valid for " input type="number" name="days" value="7" min="1" max="30" size="3"; " days" }
                " "
                label { "uses " input type="number" name="uses" value="1" min="1" max="100" size="3"; }
                " "
                button #create-invite type="submit" { "Create" }
            }
        }
        @if list.is_empty() {
            p { "No invites." }
        } @else {
            table #invites {
                tr { th { "Invite" } th { "Role" } th { "Created (UTC)" } th { "Expires (UTC)" } th { "Uses left" } th { "State" } th {} }
                @for i in &list {
                    @let active = i.revoked_at.is_none() && i.expires_at > now && i.uses_left > 0;
                    tr {
                        td { code { (i.invite_id) } }
                        td { (i.role.as_str()) }
                        td { (when(Some(i.created_at))) }
                        td { (when(Some(i.expires_at))) }
                        td { (i.uses_left) }
                        td { @if i.revoked_at.is_some() { "revoked" } @else if active { "active" } @else { "spent or expired" } }
                        td {
                            @if active {
                                form.inline method="post" action="/invites/revoke" {
                                    (csrf(session))
                                    input type="hidden" name="invite" value=(i.invite_id);
                                    button.danger type="submit" { "Revoke" }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    page(state, session, "/invites", banner, body)
}

/// The create-invite form.
#[derive(Debug, Deserialize)]
pub(in crate::console) struct InviteForm {
    role: String,
    days: u64,
    uses: u32,
}

/// `POST /invites/create`.
pub(in crate::console) async fn invite_create(
    State(state): State<ConsoleState>,
    Extension(session): Extension<Session>,
    Form(form): Form<InviteForm>,
) -> Response {
    let role = match form.role.parse::<Role>() {
        Ok(r) => r,
        Err(e) => {
            return invites_page(&state, &session, Banner::Error(format!("role: {e}")), None).await
        }
    };
    let request = AdminRequest::InviteCreate {
        role,
        expires_secs: form.days.saturating_mul(24 * 60 * 60),
        uses: form.uses,
    };
    match ask::<InviteCreated>(&state, request).await {
        Ok(c) => {
            let banner = Banner::Notice(format!("Created invite {}.", c.invite_id));
            invites_page(&state, &session, banner, Some(c)).await
        }
        Err(e) => invites_page(&state, &session, Banner::Error(e), None).await,
    }
}

/// The revoke-invite form.
#[derive(Debug, Deserialize)]
pub(in crate::console) struct InviteRevokeForm {
    invite: String,
}

/// `POST /invites/revoke`.
pub(in crate::console) async fn invite_revoke(
    State(state): State<ConsoleState>,
    Extension(session): Extension<Session>,
    Form(form): Form<InviteRevokeForm>,
) -> Response {
    let banner = match ask::<Value>(
        &state,
        AdminRequest::InviteRevoke {
            invite_id: form.invite.clone(),
        },
    )
    .await
    {
        Ok(_) => Banner::Notice(format!("Revoked invite {}.", form.invite)),
        Err(e) => Banner::Error(e),
    };
    invites_page(&state, &session, banner, None).await
}
