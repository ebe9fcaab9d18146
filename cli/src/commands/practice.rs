//! `labnet practice ...`, `stakeholder import`, `share`, `unshare`: the city's
//! lab data and what of it leaves the node.
//!
//! Files are parsed and validated here, in full, before anything is sent to the
//! node: an import with any error prints every error (row or JSON path, field,
//! what is wrong) and writes nothing.

use std::io::Write;
use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Serialize;

use anyhow::{bail, Context, Result};
use labnet_node::api::{
    AdminRequest, CityLab, LabImported, Practice, PracticesImported, Reissued, RosterImported,
    ShareChange, SharePreview, Shared, Unshared,
};
use labnet_node::lab::import::{
    export_practices_json, parse_practices, parse_roster, ImportErrors, ImportFormat, ImportInput,
};

use super::{answer, list, print_json, request, Listing};
use crate::args::{
    Global, ImportArgs, LabCommand, PracticeCommand, ShareArgs, ShareCommand, StakeholderCommand,
    UnshareArgs,
};
use crate::table::{left, Column, Table};
use crate::terminal::line;

/// `practice list`.
const PRACTICES: Listing<Practice> = Listing {
    columns: &[left("ID"), left("CITY"), left("AREA"), left("NAME")],
    row: |p| {
        vec![
            p.id.clone(),
            p.city.clone(),
            p.thematic_area.map_or("-", |a| a.as_str()).into(),
            p.name.clone(),
        ]
    },
    empty: "No practices yet. Import some with `labnet practice import FILE`.",
};

const REPORT_COLUMNS: [Column; 3] = [left("FIELD"), left("ACTION"), left("WHY")];

/// Parses an import file in full with `parse` (its format from its extension);
/// on any error, every error in one message, and nothing is sent to the node.
fn parse_file<T>(
    file: &Path,
    parse: fn(ImportInput<'_>, Option<ImportFormat>) -> Result<T, ImportErrors>,
) -> Result<T> {
    parse(ImportInput::Path(file), ImportFormat::from_path(file)).map_err(|errors| {
        let mut text = String::new();
        for e in &errors.errors {
            text.push_str(&format!("\n  {e}"));
        }
        anyhow::anyhow!(
            "{}: {} error(s), nothing was imported:{text}",
            file.display(),
            errors.errors.len()
        )
    })
}

pub(crate) fn run(global: &Global, command: PracticeCommand) -> Result<()> {
    match command {
        PracticeCommand::Import(args) => import(global, args),
        PracticeCommand::List(args) => {
            list(global, AdminRequest::PracticeList, args.json, &PRACTICES).map(drop)
        }
        PracticeCommand::Show(args) => {
            // Always JSON: every field of the record, in the import format.
            let practice: Practice = request(
                global,
                AdminRequest::PracticeShow {
                    practice_id: args.practice_id,
                },
            )?;
            print_json(&practice)
        }
        PracticeCommand::Edit(args) => edit(global, &args.practice_id),
    }
}

/// An import command: the file parsed in full with `parse` (see
/// [`parse_file`]), then sent as the one request `request` makes of it, whose
/// reply `human` words.
fn import_file<T, R: DeserializeOwned + Serialize>(
    global: &Global,
    args: &ImportArgs,
    parse: fn(ImportInput<'_>, Option<ImportFormat>) -> Result<T, ImportErrors>,
    request: fn(T) -> AdminRequest,
    human: impl FnOnce(&R),
) -> Result<()> {
    let parsed = parse_file(&args.file, parse)?;
    answer(global, request(parsed), args.output.json, human)
}

fn import(global: &Global, args: ImportArgs) -> Result<()> {
    import_file(
        global,
        &args,
        parse_practices,
        |practices| AdminRequest::PracticeImport { practices },
        |r: &PracticesImported| {
            println!(
                "Imported {}: {} new, {} updated.",
                args.file.display(),
                r.created.len(),
                r.updated.len()
            );
            for id in &r.updated {
                println!("  updated {}", line(id));
            }
        },
    )
}

pub(crate) fn stakeholder(global: &Global, command: StakeholderCommand) -> Result<()> {
    let StakeholderCommand::Import(args) = command;
    import_file(
        global,
        &args,
        parse_roster,
        |roster| AdminRequest::RosterImport { roster },
        |i: &RosterImported| {
            // Names are personal data: say how many, never who.
            println!(
                "Imported the roster: {} stakeholder(s). It stays on this node.",
                i.stakeholders
            );
            for r in &i.reissued {
                print_reissue(r, "Re-issued");
            }
        },
    )
}

pub(crate) fn lab(global: &Global, command: LabCommand) -> Result<()> {
    match command {
        LabCommand::Import(args) => {
            let text = std::fs::read_to_string(&args.file)
                .with_context(|| args.file.display().to_string())?;
            let lab: CityLab = serde_json::from_str(&text).map_err(|e| {
                anyhow::anyhow!(
                    "{}: line {}, column {}: {e}; nothing was imported",
                    args.file.display(),
                    e.line(),
                    e.column()
                )
            })?;
            answer(
                global,
                AdminRequest::LabImport { lab },
                args.output.json,
                |i: &LabImported| {
                    println!(
                        "Stored the lab record: {} lab(s), {} micro-experiment(s).",
                        i.labs, i.experiments
                    )
                },
            )
        }
        LabCommand::Show => print_json(&request::<CityLab>(global, AdminRequest::LabShow)?),
    }
}

fn edit(global: &Global, practice_id: &str) -> Result<()> {
    let practice: Practice = request(
        global,
        AdminRequest::PracticeShow {
            practice_id: practice_id.to_string(),
        },
    )?;
    let text = export_practices_json(std::slice::from_ref(&practice))
        .context("writing the practice as JSON")?;
    let mut file = tempfile_in_data_dir(global)?;
    file.1.write_all(text.as_bytes())?;
    file.1.flush()?;
    let editor = std::env::var("VISUAL")
        .or_else(|_| std::env::var("EDITOR"))
        .unwrap_or_else(|_| "vi".into());
    loop {
        let status = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("{editor} \"$1\""))
            .arg("sh")
            .arg(&file.0)
            .status()
            .with_context(|| format!("starting the editor ({editor})"))?;
        if !status.success() {
            bail!("the editor exited with {status}; nothing was saved");
        }
        let edited = std::fs::read_to_string(&file.0)?;
        if edited == text {
            println!("No changes.");
            return Ok(());
        }
        match parse_practices(ImportInput::Text(&edited), Some(ImportFormat::Json)) {
            Ok(mut practices) if practices.len() == 1 && practices[0].id == practice.id => {
                let practice = practices.remove(0);
                let _: PracticesImported =
                    request(global, AdminRequest::PracticeImport { practices: vec![practice] })?;
                println!("Saved {practice_id}. Shared versions change only when you run `labnet share` again.");
                return Ok(());
            }
            Ok(_) => eprintln!("The file must hold exactly this one practice, with its id {practice_id} unchanged."),
            Err(errors) => {
                for e in &errors.errors {
                    eprintln!("  {e}");
                }
            }
        }
        if !ask("Edit again? [Y/n] ")? {
            bail!("nothing was saved");
        }
    }
}

/// A private temporary file in the data directory (the practice holds personal
/// data, so it does not go to a shared /tmp), removed on drop.
fn tempfile_in_data_dir(global: &Global) -> Result<(std::path::PathBuf, std::fs::File, TempGuard)> {
    use std::os::unix::fs::OpenOptionsExt;
    let path = global
        .data_dir
        .join(format!("edit-{}.json", std::process::id()));
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .with_context(|| path.display().to_string())?;
    Ok((path.clone(), file, TempGuard(path)))
}

struct TempGuard(std::path::PathBuf);

impl Drop for TempGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn ask(prompt: &str) -> Result<bool> {
    eprint!("{prompt}");
    std::io::stderr().flush()?;
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    Ok(!line.trim().eq_ignore_ascii_case("n"))
}

pub(crate) fn share(global: &Global, args: ShareArgs) -> Result<()> {
    if let Some(ShareCommand::Preview(preview)) = args.command {
        let preview: SharePreview = request(
            global,
            AdminRequest::SharePreview {
                practice_id: preview.practice_id,
                scope: preview.scope,
            },
        )?;
        // Exactly the bytes a peer would receive, then the report on stderr.
        println!("{}", preview.json);
        if preview.report.items.is_empty() {
            eprintln!("Nothing was removed or suppressed.");
        } else {
            eprintln!("Removed or changed before publication:");
            let mut table = Table::new(&REPORT_COLUMNS).indented("  ");
            for item in &preview.report.items {
                table.row(vec![
                    item.path.clone(),
                    item.action.as_str().into(),
                    item.reason.clone(),
                ]);
            }
            eprint!("{}", table.render());
        }
        // Each piece in context («what is published in its place»), and the
        // words a data steward exempted.
        for r in &preview.report.removals {
            eprintln!(
                "  {}: {}\n      {} ({})",
                line(&r.field),
                line(&r.excerpt),
                line(&r.reason),
                line(&r.rule)
            );
        }
        for e in &preview.report.exemptions {
            eprintln!(
                "  {}: {}\n      kept: '{}' is in anonymization.not_names",
                line(&e.field),
                line(&e.excerpt),
                line(&e.word)
            );
        }
        if let Some(r) = &preview.reissue {
            print_reissue(r, "Sharing will re-issue");
        }
        return Ok(());
    }
    let (Some(practice_id), Some(scope)) = (args.practice_id, args.scope) else {
        bail!("give a practice id and --scope (see `labnet share --help`)");
    };
    answer(
        global,
        AdminRequest::Share {
            practice_id: practice_id.clone(),
            scope: scope.clone(),
        },
        args.output.json,
        |s: &Shared| match s.change {
            ShareChange::Unchanged => {
                println!("{practice_id} is already shared as it is; nothing changed.")
            }
            ShareChange::Created | ShareChange::Updated => {
                println!("Shared {practice_id} with {scope} as {}.", s.doc_id);
                if let Some(r) = &s.reissued {
                    print_reissue(r, "Re-issued");
                }
            }
        },
    )
}

/// A re-issue: which publication is replaced, by which, and why (the fields
/// of its history that fail; never their values).
fn print_reissue(r: &Reissued, verb: &str) {
    if r.narrowed {
        eprintln!(
            "{verb} {} as {}: its scope narrows from public, and relays pass on public \
             copies only. Every holder deletes the old document and confirms (see `labnet \
             status`); the new scope gets the new one.",
            r.old_doc_id, r.new_doc_id
        );
        return;
    }
    eprintln!(
        "{verb} {} as {}: its history fails today's rules in {} (version(s) {}). \
         Peers delete the old document and confirm (see `labnet status`).",
        line(&r.old_doc_id),
        line(&r.new_doc_id),
        line(&r.fields.join(", ")),
        r.versions
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    );
}

pub(crate) fn unshare(global: &Global, args: UnshareArgs) -> Result<()> {
    let unshared: Unshared = request(
        global,
        AdminRequest::Unshare {
            practice_id: args.practice_id,
        },
    )?;
    println!(
        "Retracted {}. Peers that hold it remove it and confirm (see `labnet status`).",
        unshared.practice_id
    );
    Ok(())
}
