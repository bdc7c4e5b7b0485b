"""Text helpers shared by the nets and by `generation` (which may import model loaders, not nets): class names
as the text towers read them."""

import re


def split_camel_case(name: str) -> str:
    """UCF-101 style `ApplyEyeMakeup` -> `Apply Eye Makeup`; other names unchanged apart from `_`."""
    return re.sub(r"(?<=[a-z])(?=[A-Z])", " ", name).replace("_", " ")
