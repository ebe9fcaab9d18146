//! The `config` target: the config file and its environment overrides.

use labnet_config::{Config, Overrides, Role};

use super::{fields, join_raw, Seed};

/// The config file and its overrides. Input: `0xff`-separated fields: the
/// file's text, then the values of `LABNET_NAME`, `LABNET_ROLE`,
/// `LABNET_LISTEN`, `LABNET_ADVERTISE`, `LABNET_LOG_FORMAT` and
/// `LABNET_MIN_COUNT` (an empty field is unset). An accepted config's
/// `labnet init` file, written with its name, role and listen address,
/// parses back to the same three.
pub fn config(data: &[u8]) {
    let parts = fields(data);
    let Some((text, env)) = parts.split_first() else {
        return;
    };
    let keys = [
        "LABNET_NAME",
        "LABNET_ROLE",
        "LABNET_LISTEN",
        "LABNET_ADVERTISE",
        "LABNET_LOG_FORMAT",
        "LABNET_MIN_COUNT",
    ];
    let overrides = Overrides::from_lookup(|key| {
        let i = keys.iter().position(|k| *k == key)?;
        env.get(i).filter(|v| !v.is_empty()).cloned()
    });
    let _ = Config::from_toml("fuzz.toml", text);
    let Ok(config) = Config::load("fuzz.toml", text, &[overrides]) else {
        return;
    };
    let _ = config.contact_address("fuzz.example.org", None);
    let listen = config.listen.to_string();
    let file = labnet_config::default_file(&config.name, config.role, &listen);
    match Config::from_toml("init.toml", &file) {
        Ok(back) => {
            assert_eq!(back.name, config.name, "init wrote another name");
            assert_eq!(back.role, config.role, "init wrote another role");
            assert_eq!(back.listen, config.listen, "init wrote another address");
        }
        Err(e) => panic!("the init file of an accepted config does not parse: {e}"),
    }
}

/// Seeds of `config`: the example file shipped in `dist/`, and small ones.
pub fn config_seeds() -> Vec<Seed> {
    let example = include_str!("../../../dist/config.example.toml");
    let init = labnet_config::default_file("Mechelen", Role::Partner, "0.0.0.0:7447");
    vec![
        ("example", example.as_bytes().to_vec()),
        ("init", init.into_bytes()),
        (
            "minimal-with-env",
            join_raw(&[
                "[node]\nname = \"Modena\"\n",
                "Pont-de-Claix",
                "subscriber",
                "127.0.0.1:0",
                "labnet.example.org:7447",
                "json",
                "5",
            ]),
        ),
        (
            "not-names",
            b"[node]\nname = \"X\"\nrole = \"partner\"\n[anonymization]\nmin_count = 3\nnot_names = [\"green\", \"rose\"]\n[console]\nlisten = \"off\"\n[feed]\nlisten = \"127.0.0.1:0\"\n".to_vec(),
        ),
    ]
}
