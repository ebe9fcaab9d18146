//! Invites: list, create (the token is shown once), revoke.

use super::*;

/// `GET /invites`.
pub(in crate::console) async fn invites(v: Viewer) -> Response {
    invites_page(&v, Banner::None, None).await
}

async fn invites_page(v: &Viewer, banner: Banner, created: Option<InviteCreated>) -> Response {
    let now = crate::store::unix_now();
    v.show("/invites", AdminRequest::InviteList, banner, |list: Vec<InviteEntry>| {
        html! {
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
                    (v.csrf())
                    label { "The joiner becomes " select name="role" { option value="partner" { "a partner" } option value="subscriber" { "a subscriber" } } }
                    " "
                    label { "valid for " input type="number" name="days" value="7" min="1" max="30" size="3"; " days" }
                    " "
                    label { "uses " input type="number" name="uses" value="1" min="1" max="100" size="3"; }
                    " "
                    button #create-invite type="submit" { "Create" }
                }
            }
            (table(html! { p { "No invites." } }, "invites", &["Invite", "Role", "Created (UTC)", "Expires (UTC)", "Uses left", "State", ""], &list, |i| html! {
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
                            (v.post_form("/invites/revoke", &[("invite", &i.invite_id)], html! {
                                button.danger type="submit" { "Revoke" }
                            }))
                        }
                    }
                }
            }))
        }
    })
    .await
}

/// The create-invite form.
#[derive(Debug, Deserialize)]
pub(in crate::console) struct InviteForm {
    role: String,
    days: u64,
    uses: u32,
}

/// `POST /invites/create`.
pub(in crate::console) async fn invite_create(v: Viewer, Form(form): Form<InviteForm>) -> Response {
    let role = match form.role.parse::<Role>() {
        Ok(r) => r,
        Err(e) => return invites_page(&v, Banner::Error(format!("role: {e}")), None).await,
    };
    let request = AdminRequest::InviteCreate {
        role,
        expires_secs: form.days.saturating_mul(24 * 60 * 60),
        uses: form.uses,
    };
    match v.ask::<InviteCreated>(request).await {
        Ok(c) => {
            let banner = Banner::Notice(format!("Created invite {}.", c.invite_id));
            invites_page(&v, banner, Some(c)).await
        }
        Err(e) => invites_page(&v, Banner::Error(e), None).await,
    }
}

/// The revoke-invite form.
#[derive(Debug, Deserialize)]
pub(in crate::console) struct InviteRevokeForm {
    invite: String,
}

/// `POST /invites/revoke`.
pub(in crate::console) async fn invite_revoke(
    v: Viewer,
    Form(form): Form<InviteRevokeForm>,
) -> Response {
    let request = AdminRequest::InviteRevoke {
        invite_id: form.invite.clone(),
    };
    let banner = v
        .act(request, |_: Value| {
            format!("Revoked invite {}.", form.invite)
        })
        .await;
    invites_page(&v, banner, None).await
}
