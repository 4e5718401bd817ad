"""The ZTE_TAD packet contract (``contracts.md``): feature columns and ranges."""

from __future__ import annotations

IP_OCTETS = tuple(f"{side}_IP{i}" for side in ("Source", "Destination") for i in range(1, 5))
SEND_COLUMNS = ("Send_Year", "Send_Month", "Send_Day", "Send_Hour", "Send_Minute",
                "Send_Second")
FEATURE_COLUMNS = ("LEN_SRC_IP", "LEN_DEST_IP", *IP_OCTETS, "TCP_SPORT", "TCP_DPORT",
                   "LEN_RAW", *SEND_COLUMNS)
PACKET_SCHEMA = ", ".join(f"{name} BIGINT" for name in FEATURE_COLUMNS)

# Valid ranges of each feature; a packet outside them is rejected.
RANGES = {
    "LEN_SRC_IP": (7, 15), "LEN_DEST_IP": (7, 15),  # "0.0.0.0" .. "255.255.255.255"
    **dict.fromkeys(IP_OCTETS, (0, 255)),
    "TCP_SPORT": (0, 65535), "TCP_DPORT": (0, 65535),
    "LEN_RAW": (0, 2 * 65535),
    "Send_Year": (1970, 2100), "Send_Month": (1, 12), "Send_Day": (1, 31),
    "Send_Hour": (0, 23), "Send_Minute": (0, 59), "Send_Second": (0, 60),
}
REJECTION_REASONS = ("null_feature", "out_of_range")


def name_clash(names: list[str]) -> str | None:
    """Feature columns a file holds more than once, ignoring case, or None.

    Spark resolves columns case-insensitively: such a file fails the read of
    the whole date instead of just its own.
    """
    clashes = [f"{feature} ({', '.join(n for n in names if n.lower() == feature.lower())})"
               for feature in FEATURE_COLUMNS
               if sum(name.lower() == feature.lower() for name in names) > 1]
    if clashes:
        return f"feature column(s) named more than once, ignoring case: {', '.join(clashes)}"
    return None


def schema_problem(fields: dict[str, str]) -> str | None:
    """Why a file's columns (name -> Arrow type) break the contract, or None."""
    missing = [name for name in FEATURE_COLUMNS if name not in fields]
    if missing:
        return f"missing feature column(s) {', '.join(missing)}"
    wrong = [f"{name} is {fields[name]}" for name in FEATURE_COLUMNS if fields[name] != "int64"]
    if wrong:
        return f"feature columns must be int64: {', '.join(wrong)}"
    return None
