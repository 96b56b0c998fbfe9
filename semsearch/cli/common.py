"""What every command shares: settings from the environment, the encoder, one-line errors."""

from __future__ import annotations

import click

from semsearch.errors import ConfigurationError, SemsearchError
from semsearch.settings import Settings


def load_settings() -> Settings:
    """Settings from the environment; an invalid one is named without its value (it may be a secret)."""
    try:
        return Settings()
    except ValueError as exc:  # pydantic's ValidationError: named without the values, which may be secrets
        from semsearch.engines.opensearch import redact_credentials  # noqa: PLC0415

        errors = getattr(exc, "errors", None)
        if callable(errors):
            problems = "; ".join(f"SEMSEARCH_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}"
                                 for e in errors(include_input=False, include_url=False))
        else:
            problems = str(exc)
        raise ConfigurationError(f"invalid setting: {redact_credentials(problems)}") from None


def make_encoder(settings: Settings, model: str | None = None):
    from semsearch.encoding.encoder import Encoder  # noqa: PLC0415 - torch loads only for commands that encode

    return Encoder.from_settings(settings, model)


INTERRUPTED = ("what was written stays, and the same command run again goes on from there (ingest skips what is "
               "indexed; backfill and migrate resume from their checkpoints; enable-vectors cancelled its copy and "
               "starts it again)")


class CommandGroup(click.Group):
    """Turns semsearch's own errors into one clear line and exit status 2."""

    def invoke(self, ctx: click.Context):
        from opensearchpy.exceptions import ImproperlyConfigured, OpenSearchException  # noqa: PLC0415

        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:  # click would say only "Aborted!"
            click.echo(f"interrupted: {INTERRUPTED}", err=True)
            ctx.exit(130)
        except (SemsearchError, OpenSearchException, ImproperlyConfigured) as exc:
            # One place turns cluster failures into one line: authentication, TLS, reachability
            # are named (semsearch.engines.opensearch.explain_transport_error); secrets are scrubbed out.
            from semsearch.engines.opensearch import describe_error  # noqa: PLC0415

            try:
                settings = Settings()
            except ValueError:
                settings = None
            click.echo(f"error: {describe_error(exc, settings)}", err=True)
            ctx.exit(2)
