//! `labnet practice ...`, `stakeholder import`, `share`, `unshare`: the city's
//! lab data and what of it leaves the node.
//!
//! Files are parsed and validated here, in full, before anything is sent to the
//! node: an import with any error prints every error (row or JSON path, field,
//! what is wrong) and writes nothing.

use std::io::Write;

use anyhow::{bail, Context, Result};
use labnet_node::admin::AdminRequest;
use labnet_node::lab::import::{
    export_practices_json, parse_practices, parse_roster, ImportErrors, ImportFormat, ImportInput,
};
use labnet_node::lab::Practice;

use super::{decode, print_json, request};
use crate::args::{
    Global, ImportArgs, LabCommand, PracticeCommand, ShareArgs, ShareCommand, StakeholderCommand,
    UnshareArgs,
};

fn import_failed(file: &std::path::Path, errors: ImportErrors) -> anyhow::Error {
    let mut text = String::new();
    for e in &errors.errors {
        text.push_str(&format!("\n  {e}"));
    }
    anyhow::anyhow!(
        "{}: {} error(s), nothing was imported:{text}",
        file.display(),
        errors.errors.len()
    )
}

pub(crate) fn run(global: &Global, command: PracticeCommand) -> Result<()> {
    match command {
        PracticeCommand::Import(args) => import(global, args),
        PracticeCommand::List(args) => {
            let practices: Vec<Practice> = decode(request(global, AdminRequest::PracticeList)?)?;
            if args.json {
                return print_json(&practices);
            }
            if practices.is_empty() {
                println!("No practices yet. Import some with `labnet practice import FILE`.");
                return Ok(());
            }
            println!("{:<40}  {:<24}  {:<10}  NAME", "ID", "CITY", "AREA");
            for p in practices {
                let area = serde_json::to_value(p.thematic_area)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_else(|| "-".into());
                println!("{:<40}  {:<24}  {:<10}  {}", p.id, p.city, area, p.name);
            }
            Ok(())
        }
        PracticeCommand::Show(args) => {
            let practice: serde_json::Value = request(
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

fn import(global: &Global, args: ImportArgs) -> Result<()> {
    let format = ImportFormat::from_path(&args.file);
    let practices = parse_practices(ImportInput::Path(&args.file), format)
        .map_err(|e| import_failed(&args.file, e))?;
    let report: serde_json::Value = request(global, AdminRequest::PracticeImport { practices })?;
    if args.json {
        return print_json(&report);
    }
    let count = |k: &str| report[k].as_array().map(Vec::len).unwrap_or(0);
    println!(
        "Imported {}: {} new, {} updated.",
        args.file.display(),
        count("created"),
        count("updated")
    );
    for id in report["updated"].as_array().into_iter().flatten() {
        println!("  updated {}", id.as_str().unwrap_or_default());
    }
    Ok(())
}

pub(crate) fn stakeholder(global: &Global, command: StakeholderCommand) -> Result<()> {
    let StakeholderCommand::Import(args) = command;
    let format = ImportFormat::from_path(&args.file);
    let roster = parse_roster(ImportInput::Path(&args.file), format)
        .map_err(|e| import_failed(&args.file, e))?;
    let result = request(global, AdminRequest::RosterImport { roster })?;
    if args.json {
        return print_json(&result);
    }
    // Names are personal data: say how many, never who.
    println!(
        "Imported the roster: {} stakeholder(s). It stays on this node.",
        result["stakeholders"]
    );
    Ok(())
}

pub(crate) fn lab(global: &Global, command: LabCommand) -> Result<()> {
    match command {
        LabCommand::Import(args) => {
            let text = std::fs::read_to_string(&args.file)
                .with_context(|| args.file.display().to_string())?;
            let lab: labnet_node::lab::CityLab = serde_json::from_str(&text).map_err(|e| {
                anyhow::anyhow!(
                    "{}: line {}, column {}: {e}; nothing was imported",
                    args.file.display(),
                    e.line(),
                    e.column()
                )
            })?;
            let result = request(global, AdminRequest::LabImport { lab })?;
            if args.json {
                return print_json(&result);
            }
            println!(
                "Stored the lab record: {} lab(s), {} micro-experiment(s).",
                result["labs"], result["experiments"]
            );
            Ok(())
        }
        LabCommand::Show => print_json(&request(global, AdminRequest::LabShow)?),
    }
}

fn edit(global: &Global, practice_id: &str) -> Result<()> {
    let practice: Practice = decode(request(
        global,
        AdminRequest::PracticeShow {
            practice_id: practice_id.to_string(),
        },
    )?)?;
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
        let result = request(
            global,
            AdminRequest::SharePreview {
                practice_id: preview.practice_id,
                scope: preview.scope,
            },
        )?;
        // Exactly the bytes a peer would receive, then the report on stderr.
        println!("{}", result["json"].as_str().unwrap_or_default());
        let items = result["report"]["items"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if items.is_empty() {
            eprintln!("Nothing was removed or suppressed.");
        } else {
            eprintln!("Removed or changed before publication:");
            for item in items {
                eprintln!(
                    "  {:<40} {:<12} {}",
                    item["path"].as_str().unwrap_or(""),
                    item["action"].as_str().unwrap_or(""),
                    item["reason"].as_str().unwrap_or("")
                );
            }
        }
        // Each piece in context («what is published in its place»), and the
        // words a data steward exempted.
        for r in result["report"]["removals"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let f = |k: &str| r[k].as_str().unwrap_or("").to_string();
            eprintln!(
                "  {}: {}\n      {} ({})",
                f("field"),
                f("excerpt"),
                f("reason"),
                f("rule")
            );
        }
        for e in result["report"]["exemptions"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let f = |k: &str| e[k].as_str().unwrap_or("").to_string();
            eprintln!(
                "  {}: {}\n      kept: '{}' is in anonymization.not_names",
                f("field"),
                f("excerpt"),
                f("word")
            );
        }
        return Ok(());
    }
    let (Some(practice_id), Some(scope)) = (args.practice_id, args.scope) else {
        bail!("give a practice id and --scope (see `labnet share --help`)");
    };
    let outcome = request(
        global,
        AdminRequest::Share {
            practice_id: practice_id.clone(),
            scope: scope.clone(),
        },
    )?;
    if args.json {
        return print_json(&outcome);
    }
    let change = outcome["change"].as_str().unwrap_or("");
    match change {
        "Unchanged" | "unchanged" => {
            println!("{practice_id} is already shared as it is; nothing changed.")
        }
        _ => println!(
            "Shared {practice_id} with {scope} as {}.",
            outcome["doc_id"].as_str().unwrap_or("")
        ),
    }
    Ok(())
}

pub(crate) fn unshare(global: &Global, args: UnshareArgs) -> Result<()> {
    request(
        global,
        AdminRequest::Unshare {
            practice_id: args.practice_id.clone(),
        },
    )?;
    println!(
        "Retracted {}. Peers that hold it remove it and confirm (see `labnet status`).",
        args.practice_id
    );
    Ok(())
}
