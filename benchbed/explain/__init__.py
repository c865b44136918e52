"""Why a runner, or a version, is slower: the measured gap between two records taken apart by
their profiles (``--explain``), stage by stage, then into the functions and operators that
moved. Pure functions over records: the console, the JSON, the report and compare use them."""

from .attribute import Explanation, OperatorDelta, Part, clean_record, explain_change, explain_pair, explain_records
from .render import explanation_lines

__all__ = ["Explanation", "OperatorDelta", "Part", "clean_record", "explain_change", "explain_pair", "explain_records", "explanation_lines"]
