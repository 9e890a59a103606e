//! Recipes (`--recipe`): every key a recipe sets reaches the run's `config.json`, a flag given on
//! the command line wins over it, a method's section is laid over the common one, and a bad
//! recipe is refused naming its file and the key. BalanceBenchmark's recipe through `compare`.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use datasets::Split;
use trainer::recipe::{Recipe, BUILT_IN};

fn trainer(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_trainer"));
    cmd.args(args);
    cmd
}

fn ok(o: Output) -> String {
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(o.status.success(), "{err}");
    err
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

fn data(dir: &Path) {
    common::shards(dir, Split::Train, 32);
    common::shards(dir, Split::Test, 8);
}

#[test]
fn every_key_of_a_recipe_reaches_config_json_and_flags_win() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("data");
    data(&d);
    let recipe = tmp.path().join("protocol.toml");
    std::fs::write(
        &recipe,
        r#"description = "a test protocol"
[train]
optimizer = "adamw"
lr = 0.02
weight_decay = 0.01
lr_step = 5
lr_gamma = 0.5
epochs = 1
batch_size = 6
drop_last = true
select_on_test = true
alpha = 0.4
modulation_start = 1
modulation_end = 7
gamma = 2.0                # an old name, taken as mmpareto_gamma
pmr_momentum = 0.5
[method.opm]
alpha = 0.6
opm_q_base = 0.3
opm_lambda = 0.9
[method.ogm-ge]
alpha = 0.1
"#,
    )
    .unwrap();
    let out = tmp.path().join("runs");
    let args = ["train", "--model", "tiny", "--frames", "2", "--balance", "opm", "--name", "r", "--lr", "0.05"];
    ok(trainer(&args).arg("--recipe").arg(&recipe).arg("--data").arg(&d).arg("--out").arg(&out).output().unwrap());
    let c = json(&out.join("r/config.json"));
    let want = [
        ("optimizer", serde_json::json!("adamw")),
        ("lr", serde_json::json!(0.05)), // the flag, not the recipe's 0.02
        ("weight_decay", serde_json::json!(0.01)),
        ("lr_step", serde_json::json!(5)),
        ("lr_gamma", serde_json::json!(0.5)),
        ("epochs", serde_json::json!(1)),
        ("batch_size", serde_json::json!(6)),
        ("drop_last", serde_json::json!(true)),
        ("select_on_test", serde_json::json!(true)),
        ("alpha", serde_json::json!(0.6)), // [method.opm] over [train]
        ("modulation_start", serde_json::json!(1)),
        ("modulation_end", serde_json::json!(7)),
        ("mmpareto_gamma", serde_json::json!(2.0)),
        ("pmr_momentum", serde_json::json!(0.5)),
        ("opm_q_base", serde_json::json!(0.3)),
        ("opm_lambda", serde_json::json!(0.9)),
        ("opm_p_exe", serde_json::json!(0.7)), // not in the recipe: the default
        ("recipe", serde_json::json!(recipe.display().to_string())),
    ];
    for (key, value) in want {
        assert_eq!(c[key], value, "{key} in {c}");
    }
    // drop_last: 32 clips (selection on test, so all of them train) at batch 6 are 5 full steps.
    let steps = std::fs::read_to_string(out.join("r/steps.jsonl")).unwrap();
    assert_eq!(steps.lines().count(), 5, "the short last batch is dropped:\n{steps}");
}

#[test]
fn a_bad_recipe_is_refused_naming_its_file_and_the_key() {
    let cases = [
        ("[train]\nepohcs = 3\n", "unknown key \"epohcs\" in [train]"),
        ("[method.ogm-ge]\nalpha = \"high\"\n", "[method.ogm-ge]: key \"alpha\" has the wrong type"),
        ("[method.ogm-gee]\nalpha = 0.3\n", "unknown method \"ogm-gee\""),
        ("[method.pmr]\nq_base = 0.3\n", "unknown key \"q_base\" in [method.pmr]"),
        ("[localize]\nhead = \"transformer\"\n", "key \"head\" has the wrong type"),
        ("[compare]\nmethods = [\"none\", \"atf\"]\n", "unknown method \"atf\""),
        ("[compare]\nseeds = [1]\n", "unknown key \"seeds\" in [compare]"),
        ("[trian]\nlr = 1\n", "unknown key \"trian\""),
        ("[train\nlr = 1\n", "not a valid TOML file"),
    ];
    for (text, want) in cases {
        let e = format!("{:#}", Recipe::parse("t", "dir/t.toml", text).unwrap_err());
        assert!(e.starts_with("dir/t.toml") && e.contains(want), "{text}: {e}");
    }
    // Through the binary: refused before anything is read or written.
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("bad.toml");
    std::fs::write(&file, "[train]\nepohcs = 3\n").unwrap();
    let o = trainer(&["train", "--data", "nowhere"]).arg("--recipe").arg(&file).arg("--out").arg(tmp.path().join("runs")).output().unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains(&file.display().to_string()) && err.contains("epohcs"), "{err}");
    assert!(!tmp.path().join("runs").exists(), "nothing written");
    let o = trainer(&["localize", "--recipe", "balancebenchmark", "--data", "nowhere"]).output().unwrap();
    assert!(String::from_utf8_lossy(&o.stderr).contains("no [localize] section"), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn the_built_in_recipes_read_and_name_only_methods_they_configure() {
    for (name, _) in BUILT_IN {
        let r = Recipe::load(name).unwrap_or_else(|e| panic!("{name}: {e:#}"));
        assert!(!r.description.is_empty() && !r.train.is_empty(), "{name}");
    }
    let bb = Recipe::load("balancebenchmark").unwrap();
    let methods = bb.methods.clone().unwrap();
    assert!(bb.per_method.keys().all(|m| methods.contains(m)), "a [method] section for a method BB's list leaves out");
}

#[test]
fn compare_runs_balancebenchmarks_protocol_with_its_per_method_settings() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().join("data");
    data(&d);
    let out = tmp.path().join("bb");
    let args = ["compare", "--recipe", "balancebenchmark", "--methods", "none,ogm-ge,opm", "--seeds", "0", "--epochs", "1", "--batch-size", "8"];
    // --jobs 2: each run in its own process, which reads the recipe's config.json back.
    ok(trainer(&args).args(["--model", "tiny", "--frames", "2", "--jobs", "2"]).arg("--data").arg(&d).arg("--out").arg(&out).output().unwrap());
    for run in ["none", "ogm-ge", "opm"] {
        let c = json(&out.join(format!("{run}-adamw-seed0/config.json")));
        let common =
            [("optimizer", r#""adamw""#), ("lr", "0.001"), ("weight_decay", "0.01"), ("drop_last", "true"), ("select_on_test", "true"), ("epochs", "1")];
        for (key, value) in common {
            assert_eq!(c[key].to_string(), value, "{run}: {key} in {c}");
        }
        let (alpha, start) = if run == "ogm-ge" { (0.3, 10) } else { (0.8, 0) };
        assert_eq!((c["alpha"].as_f64().unwrap(), c["modulation_start"].as_u64().unwrap()), (alpha, start), "{run}");
        assert_eq!(c["opm_q_base"].as_f64().unwrap(), if run == "opm" { 0.4 } else { 0.5 }, "{run}");
    }
    let md = std::fs::read_to_string(out.join("compare.md")).unwrap();
    assert!(md.contains("Recipe `balancebenchmark`") && md.contains("- `ogm-ge`: alpha 0.3") && md.contains("selected on the test split"), "{md}");
}
