"""Print the Chinese edition's Jupyter Book configuration: ``_config.yml`` with its language.

``make book`` builds the English edition from ``_config.yml`` and then the Chinese one from
this script's output (``jupyter-book build --config``); everything else is shared, so the two
configurations cannot drift apart. Usage: ``python _ext/zh_config.py _config.yml``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

TITLE = "自注意力，逐行运行"  # "Self-attention, executed"


def chinese(config: dict, root: Path) -> dict:
    """`config` (read from `root`/_config.yml) for the Chinese edition, to be read from anywhere."""
    config = dict(config, title=TITLE)
    config["html"] = dict(config["html"], baseurl=config["html"]["baseurl"].rstrip("/") + "/zh/")
    sphinx = dict(config["sphinx"])
    sphinx["config"] = dict(
        sphinx["config"],
        language="zh_CN",
        # MyST-NB's toggle of hidden code cells ("Show code cell content" in English)
        nb_code_prompt_show="显示代码单元格",
        nb_code_prompt_hide="隐藏代码单元格",
    )
    # Jupyter Book finds local extensions relative to the configuration file
    sphinx["local_extensions"] = {
        name: str((root / path).resolve()) for name, path in sphinx["local_extensions"].items()
    }
    config["sphinx"] = sphinx
    return config


if __name__ == "__main__":
    path = Path(sys.argv[1])
    english = yaml.safe_load(path.read_text(encoding="utf-8"))
    yaml.safe_dump(chinese(english, path.parent), sys.stdout, allow_unicode=True, sort_keys=False)
