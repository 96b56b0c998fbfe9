import pytest

from semsearch import Settings


def test_defaults_match_the_design(monkeypatch):
    for name in ("SEMSEARCH_OPENSEARCH_URL", "SEMSEARCH_BROKER_URL", "SEMSEARCH_MODEL"):
        monkeypatch.delenv(name, raising=False)
    settings = Settings()
    assert settings.opensearch_url == "http://localhost:9200"
    assert settings.broker_url is None
    assert settings.model is None


def test_environment_prefix(monkeypatch):
    monkeypatch.setenv("SEMSEARCH_OPENSEARCH_URL", "https://search.example:9200/")
    monkeypatch.setenv("SEMSEARCH_BROKER_URL", "redis://127.0.0.1:6379/0")
    monkeypatch.setenv("SEMSEARCH_MODEL", "/models/x")
    settings = Settings()
    assert settings.opensearch_url == "https://search.example:9200"
    assert settings.broker_url == "redis://127.0.0.1:6379/0"
    assert settings.model == "/models/x"


def test_password_is_secret(monkeypatch):
    monkeypatch.setenv("SEMSEARCH_OPENSEARCH_PASSWORD", "hunter2-very-secret")
    settings = Settings()
    assert "hunter2-very-secret" not in repr(settings)
    assert "hunter2-very-secret" not in str(settings.model_dump())
    assert settings.opensearch_password.get_secret_value() == "hunter2-very-secret"


def test_url_without_scheme_is_refused():
    with pytest.raises(ValueError, match="http:// or https://"):
        Settings(opensearch_url="localhost:9200")


def test_precision_from_the_environment(monkeypatch):
    monkeypatch.setenv("SEMSEARCH_PRECISION", "fp32")
    assert Settings().precision == "fp32"
    monkeypatch.setenv("SEMSEARCH_PRECISION", "fp64")
    with pytest.raises(ValueError, match="auto.*fp32.*fp16.*bf16"):
        Settings()
