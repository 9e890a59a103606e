//! Recipes: a published protocol as a TOML file, chosen with `--recipe NAME|PATH` on `train`,
//! `compare` and `localize`. The built-in ones live in `trainer/recipes/` (compiled in, so the
//! binary needs no checkout); any other file is named by its path.
//!
//! ```toml
//! description = "one line"
//! [train]            # config.json keys, for `train` and `compare`
//! lr = 1e-3
//! [compare]
//! methods = ["none", "ogm-ge"]   # `compare`'s methods when --methods is not given (and `all`)
//! [localize]         # the localizer's config keys, for `localize`
//! [method.ogm-ge]    # keys laid over [train] for the runs of one method
//! alpha = 0.3
//! ```
//!
//! Precedence, highest first: a flag given on the command line, the `--config` file, the
//! recipe's `[method.<balance>]` section, its `[train]` (or `[localize]`) section, the flags'
//! defaults. Every key is checked when the recipe is read: an unknown section, method or key, or a
//! value of the wrong type, is an error naming the file and the key.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::config_file::{canonical, overlay};
use crate::localize::LocalizeConfig;
use crate::methods::Balance;
use crate::train::TrainConfig;

/// The recipes shipped with the trainer: name, file text.
pub const BUILT_IN: &[(&str, &str)] =
    &[("ogm-ge-cvpr2022", include_str!("../recipes/ogm-ge-cvpr2022.toml")), ("balancebenchmark", include_str!("../recipes/balancebenchmark.toml"))];

/// A protocol read from a recipe file, every key checked.
#[derive(Debug, Clone)]
pub struct Recipe {
    /// The built-in name, or the file's path as given.
    pub name: String,
    /// Where it was read from, for messages: `built-in recipe NAME` or the path.
    pub source: String,
    pub description: String,
    pub train: Map<String, Value>,
    pub localize: Option<Map<String, Value>>,
    /// `compare`'s methods when `--methods` is not given, and what `--methods all` means.
    pub methods: Option<Vec<Balance>>,
    pub per_method: BTreeMap<Balance, Map<String, Value>>,
}

impl Recipe {
    /// A built-in recipe by name, else the recipe file at that path.
    pub fn load(spec: &str) -> Result<Recipe> {
        if let Some((name, text)) = BUILT_IN.iter().find(|(n, _)| *n == spec) {
            return Self::parse(name, &format!("built-in recipe {name} (trainer/recipes/{name}.toml)"), text);
        }
        let path = PathBuf::from(spec);
        if !path.is_file() {
            let names: Vec<&str> = BUILT_IN.iter().map(|(n, _)| *n).collect();
            bail!("recipe {spec:?}: no such file, and not a built-in recipe (built in: {})", names.join(", "));
        }
        let text = std::fs::read_to_string(&path).with_context(|| format!("reading recipe {}", path.display()))?;
        Self::parse(spec, &path.display().to_string(), &text)
    }

    /// Reads a recipe's text; `source` names it in errors.
    pub fn parse(name: &str, source: &str, text: &str) -> Result<Recipe> {
        let table: toml::Table = toml::from_str(text).with_context(|| format!("{source}: not a valid TOML file"))?;
        let mut recipe = Recipe {
            name: name.to_owned(),
            source: source.to_owned(),
            description: String::new(),
            train: Map::new(),
            localize: None,
            methods: None,
            per_method: BTreeMap::new(),
        };
        let train_keys = keys(&TrainConfig::default());
        for (key, value) in table {
            match (key.as_str(), value) {
                ("description", toml::Value::String(s)) => recipe.description = s,
                ("train", toml::Value::Table(t)) => recipe.train = section(source, "train", t, &train_keys)?,
                ("localize", toml::Value::Table(t)) => {
                    recipe.localize = Some(section(source, "localize", t, &keys(&LocalizeConfig::default()))?);
                }
                ("compare", toml::Value::Table(t)) => {
                    for (k, v) in t {
                        match (k.as_str(), v) {
                            ("methods", toml::Value::Array(names)) => {
                                let methods = names.into_iter().map(|n| method(source, "compare.methods", &n.to_string())).collect::<Result<_>>()?;
                                recipe.methods = Some(methods);
                            }
                            (k, _) => bail!("{source}: unknown key {k:?} in [compare] (known: methods, a list of method names)"),
                        }
                    }
                }
                ("method", toml::Value::Table(t)) => {
                    for (name, v) in t {
                        let balance = method(source, "method", &name)?;
                        let toml::Value::Table(t) = v else { bail!("{source}: [method.{name}] must be a table of config keys") };
                        recipe.per_method.insert(balance, section(source, &format!("method.{name}"), t, &train_keys)?);
                    }
                }
                (k @ ("description" | "train" | "localize" | "compare" | "method"), _) => bail!("{source}: {k:?} has the wrong type"),
                (k, _) => bail!("{source}: unknown key {k:?} (known: description, [train], [compare], [localize], [method.NAME])"),
            }
        }
        // Every value must fit its key: checked now, on every section, not when a run needs it.
        overlay(&TrainConfig::default(), &recipe.train, source, &|_| false)?;
        for (balance, keys) in &recipe.per_method {
            let base = overlay(&TrainConfig::default(), &recipe.train, source, &|_| false)?;
            overlay(&TrainConfig { balance: *balance, ..base }, keys, &format!("{source} [method.{}]", balance.name()), &|_| false)?;
        }
        if let Some(l) = &recipe.localize {
            overlay(&LocalizeConfig::default(), l, source, &|_| false)?;
        }
        Ok(recipe)
    }

    /// `cfg` with the recipe's `[train]` keys, then its section for the resulting method, laid
    /// over every key not `explicit` (given on the command line).
    pub fn apply_train(&self, cfg: &TrainConfig, explicit: &dyn Fn(&str) -> bool) -> Result<TrainConfig> {
        let cfg = overlay(cfg, &self.train, &self.source, explicit)?;
        let mut cfg = self.apply_method(&cfg, cfg.balance, explicit)?;
        cfg.recipe = Some(self.name.clone());
        Ok(cfg)
    }

    /// `cfg` with the recipe's `[train]` keys laid over every key not `explicit` (a comparison's
    /// template, before each method's section).
    pub fn apply_common(&self, cfg: &TrainConfig, explicit: &dyn Fn(&str) -> bool) -> Result<TrainConfig> {
        let mut cfg = overlay(cfg, &self.train, &self.source, explicit)?;
        cfg.recipe = Some(self.name.clone());
        Ok(cfg)
    }

    /// `cfg` with the recipe's section for `balance` (if any) laid over every key not `explicit`.
    pub fn apply_method(&self, cfg: &TrainConfig, balance: Balance, explicit: &dyn Fn(&str) -> bool) -> Result<TrainConfig> {
        match self.per_method.get(&balance) {
            Some(keys) => overlay(cfg, keys, &format!("{} [method.{}]", self.source, balance.name()), explicit),
            None => Ok(cfg.clone()),
        }
    }

    /// `cfg` with the recipe's `[localize]` keys laid over every key not `explicit`; an error
    /// if the recipe has no localization protocol.
    pub fn apply_localize(&self, cfg: &LocalizeConfig, explicit: &dyn Fn(&str) -> bool) -> Result<LocalizeConfig> {
        let keys = self.localize.as_ref().with_context(|| format!("{} has no [localize] section: it defines no localization protocol", self.source))?;
        overlay(cfg, keys, &self.source, explicit)
    }
}

/// The keys a config serialises to.
fn keys<T: Serialize>(cfg: &T) -> Vec<String> {
    match serde_json::to_value(cfg) {
        Ok(Value::Object(m)) => m.keys().cloned().collect(),
        _ => Vec::new(),
    }
}

/// A method by its CLI name.
fn method(source: &str, at: &str, name: &str) -> Result<Balance> {
    let name = name.trim_matches('"');
    <Balance as clap::ValueEnum>::from_str(name, false).map_err(|_| {
        let known: Vec<String> = Balance::ALL.iter().map(|b| b.name()).collect();
        anyhow::anyhow!("{source}: unknown method {name:?} in [{at}] (known: {})", known.join(", "))
    })
}

/// One section's keys as JSON values, each a known key (an old name is taken as its new one).
fn section(source: &str, at: &str, table: toml::Table, known: &[String]) -> Result<Map<String, Value>> {
    let mut out = Map::new();
    for (key, value) in table {
        let key = canonical(&key);
        if !known.contains(&key) {
            bail!("{source}: unknown key {key:?} in [{at}] (known: {})", known.join(", "));
        }
        out.insert(key, serde_json::to_value(value)?);
    }
    Ok(out)
}
