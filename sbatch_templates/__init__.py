"""The sbatch script templates (``*.sbatch.tmpl``), shipped with the package.

Placeholders are ``{{ name }}`` (a shell word, quoted), ``{{ name | sbatch }}`` (an #SBATCH
option value) and ``{{ name | raw }}`` (shell text built and quoted by sidecar.render, or the
site profile's env_setup lines). ``sidecar.render`` fills them; a missing value is an error.
"""

from importlib import resources

TRAIN = "train.sbatch.tmpl"
WATCHDOG = "watchdog.sbatch.tmpl"


def read(name: str) -> str:
    """The text of template ``name`` (e.g. ``train.sbatch.tmpl``)."""
    return resources.files(__name__).joinpath(name).read_text(encoding="utf-8")
