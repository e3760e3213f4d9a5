import pytest

from train.config import MAX_LENGTH_LIMIT, Config, ConfigError, load_config

from .conftest import REPO

# configs/pretrain-*.yaml are `stance pretrain` configs (PretrainConfig): tests/test_pretrain.py loads them.
CONFIGS = sorted(p for p in (REPO / "configs").glob("*.yaml") if not p.name.startswith("pretrain-"))


def test_configs_folder_is_not_empty():
    assert any(path.name == "tiny.yaml" for path in CONFIGS)


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_every_shipped_config_loads(path):
    cfg = load_config(path)
    assert isinstance(cfg, Config)
    assert cfg.run_name == path.stem, "a config's run_name should match its file name"


def test_defaults_without_a_file():
    cfg = load_config(None)
    assert cfg.training.seed == 42 and cfg.model.segmenter == "pyvi"


def test_unknown_key_names_file_and_suggests(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("training:\n  learnin_rate: 1.0e-4\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert str(path) in message
    assert "training.learnin_rate" in message
    assert "did you mean 'training.learning_rate'" in message


def test_bad_value_names_key(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("training:\n  epochs: many\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad\.yaml: key 'training.epochs' expects int, got 'many'"):
        load_config(path)


@pytest.mark.parametrize("key, value, allowed", [
    ("segmenter", "vncorenlp", "pyvi, underthesea, none"),
    ("type", "svm", "transformer, tfidf, ensemble"),  # exactly the kinds train/kinds.py registers
])
def test_bad_choice_lists_allowed(tmp_path, key, value, allowed):
    path = tmp_path / "bad.yaml"
    path.write_text(f"model:\n  {key}: {value}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=f"model.{key}' must be one of {allowed}"):
        load_config(path)


def test_section_given_a_scalar(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("training: 3\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="'training' must be a mapping"):
        load_config(path)


def test_yaml_exponent_string_is_cast_to_float(tmp_path):
    # PyYAML reads 3e-5 (no dot) as the string "3e-5"
    path = tmp_path / "lr.yaml"
    path.write_text("training:\n  learning_rate: 3e-5\n", encoding="utf-8")
    assert load_config(path).training.learning_rate == pytest.approx(3e-5)


def test_overrides_are_cast_to_field_types():
    cfg = load_config(REPO / "configs" / "tiny.yaml", ["training.learning_rate=3.0e-5", "run_name=lr3", "training.epochs=2"])
    assert cfg.training.learning_rate == pytest.approx(3e-5)
    assert cfg.training.epochs == 2 and isinstance(cfg.training.epochs, int)
    assert cfg.run_name == "lr3"
    assert str(cfg.run_dir).endswith("lr3")


@pytest.mark.parametrize(
    "override, message",
    [
        ("training.lr=1", "unknown key 'training.lr'"),
        ("trainin.epochs=1", "did you mean 'training'"),
        ("training.epochs", "must look like key=value"),
        ("training=1", "is a section"),
        ("training.epochs=0", "must be > 0"),
        ("training.learning_rate=.nan", r"'training.learning_rate' must be > 0 and finite; got nan"),
        ("training.learning_rate=.inf", r"'training.learning_rate' must be > 0 and finite; got inf"),
        ("training.weight_decay=-0.1", r"'training.weight_decay' must be >= 0 and finite"),
        ("training.weight_decay=.inf", r"'training.weight_decay' must be >= 0 and finite"),
        ("run_name=a/b", "plain folder name"),
    ],
)
def test_bad_overrides(override, message):
    with pytest.raises(ConfigError, match=message) as err:
        load_config(REPO / "configs" / "tiny.yaml", [override])
    assert "command line" in str(err.value) or "tiny.yaml" in str(err.value)


def test_max_length_is_clamped_to_phobert_limit():
    cfg = load_config(None, ["model.max_length=512"])
    assert cfg.model.max_length == MAX_LENGTH_LIMIT == 256


def test_heads_must_divide_hidden_size():
    with pytest.raises(ConfigError, match="multiple"):
        load_config(None, ["model.scratch.hidden_size=30", "model.scratch.num_attention_heads=4"])


def test_run_configs_written_before_the_gazetteer_key_moved_still_load(tmp_path):
    old = tmp_path / "config.yaml"
    old.write_text("model:\n  type: tfidf\n  tfidf:\n    gazetteer: my/countries.yaml\n", encoding="utf-8")
    assert load_config(old).model.gazetteer == str(tmp_path / "my" / "countries.yaml")


def test_unusable_config_files_name_the_file_and_line(tmp_path):
    with pytest.raises(ConfigError, match=f"{tmp_path}: is a folder, not a config file"):
        load_config(tmp_path)
    for text in ("", "# only a comment\n", "{}\n"):
        (tmp_path / "empty.yaml").write_text(text, encoding="utf-8")
        with pytest.raises(ConfigError, match=r"empty\.yaml: the config is empty"):
            load_config(tmp_path / "empty.yaml")
    (tmp_path / "latin1.yaml").write_bytes(b"run_name: x\n# caf\xe9\n")
    with pytest.raises(ConfigError, match=r"latin1\.yaml:2: not UTF-8 text"):
        load_config(tmp_path / "latin1.yaml")


def test_relative_paths_work_from_another_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)  # the usual case: relative paths stay as written
    here = load_config(REPO / "configs" / "tiny.yaml")
    assert here.data.train == "data/stance/train.jsonl" and here.output_dir == "models"
    monkeypatch.chdir(tmp_path)  # elsewhere: read from the config's project root (the folder with pyproject.toml)
    cfg = load_config(REPO / "configs" / "tiny.yaml")
    assert cfg.data.train == str(REPO / "data" / "stance" / "train.jsonl")
    assert cfg.model.gazetteer == str(REPO / "data" / "countries.yaml")
    assert cfg.output_dir == str(REPO / "models")
    (tmp_path / "mine.jsonl").write_text("", encoding="utf-8")  # a file in the current folder wins
    assert load_config(REPO / "configs" / "tiny.yaml", ["data.train=mine.jsonl"]).data.train == "mine.jsonl"
    hub = load_config(REPO / "configs" / "phobert-base.yaml")
    assert hub.model.name_or_path == "vinai/phobert-base"  # a hub id is no path
