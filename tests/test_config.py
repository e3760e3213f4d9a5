import pytest

from train.config import MAX_LENGTH_LIMIT, Config, ConfigError, load_config

from .conftest import REPO

CONFIGS = sorted((REPO / "configs").glob("*.yaml"))


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


def test_bad_choice_lists_allowed(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("model:\n  segmenter: vncorenlp\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="model.segmenter' must be one of pyvi, underthesea, none"):
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
    assert load_config(old).model.gazetteer == "my/countries.yaml"
