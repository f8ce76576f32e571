"""BigQuery's on-demand bill of a job, computed from its SQL and the tables' sizes.

The rules (BigQuery's on-demand pricing and DML pricing pages):

- a query bills the bytes of every column it references, over the whole table, unless
  the table is partitioned and a filter on the partition column compares it with a
  constant (a literal or a query parameter; a subquery never prunes);
- a table referenced several times in one statement is read once: the union of its
  columns, over the union of the partitions its references read;
- at least 10 MiB per table read, per statement (a table of which no column is read,
  ``COUNT(*)`` alone, bills nothing);
- INSERT bills what its SELECT reads; MERGE, UPDATE and DELETE bill that plus every
  column of the target over the partitions they touch (the whole table when it is not
  partitioned or not pruned);
- a script bills the sum of its statements (BEGIN/COMMIT bill nothing);
- data sizes: INT64, FLOAT64, TIMESTAMP, DATE 8 bytes, BOOL 1, STRING and BYTES 2 +
  their length, an ARRAY the sum of its elements, NULL 0.

Clustering is left out: it can cut the bytes of a filtered read below this figure, and
BigQuery's own estimate (the dry run) leaves it out too.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

MIB = 2**20
MINIMUM = 10 * MIB


# -- sizes ----------------------------------------------------------------------------------
@dataclass
class TableSize:
    """Average bytes per row of each column, and the rows (per partition day when the
    table is partitioned by day: days ago -> rows, 0 being today)."""

    columns: dict[str, float]
    rows: int = 0
    partition_column: str | None = None
    days: dict[int, int] = field(default_factory=dict)
    # integer-range partitioned (a staging table of several frames): value -> partition
    range_column: str | None = None
    parts: dict[int, TableSize] = field(default_factory=dict)

    @property
    def total_rows(self) -> int:
        if self.range_column:
            return sum(part.total_rows for part in self.parts.values())
        return sum(self.days.values()) if self.partition_column else self.rows

    def rows_between(self, days: set[int] | None) -> int:
        """Rows in these partitions (days ago); None: every row."""
        if days is None or not self.partition_column:
            return self.total_rows
        return sum(rows for ago, rows in self.days.items() if ago in days)

    def bytes(self, columns: Iterable[str], keep: set[int] | None) -> float:
        """The bytes of these columns over the partitions kept (None: every one)."""
        names = list(columns)
        if self.range_column:
            return sum(
                part.bytes(names, None)
                for value, part in self.parts.items()
                if keep is None or value in keep
            )
        width = sum(self.columns.get(name, 0.0) for name in names)
        return width * self.rows_between(keep)


def value_bytes(value: Any) -> int:
    """BigQuery's logical size of one value."""
    if value is None:
        return 0
    if isinstance(value, bool):
        return 1
    if isinstance(value, (int, float, datetime, date)):
        return 8
    if isinstance(value, str):
        return 2 + len(value.encode("utf-8"))
    if isinstance(value, bytes):
        return 2 + len(value)
    if isinstance(value, (list, tuple)):
        return sum(value_bytes(item) for item in value)
    if isinstance(value, dict):
        return sum(value_bytes(item) for item in value.values())
    return 8


def arrow_column_bytes(table: Any) -> dict[str, float]:
    """Average bytes per row of each column of a pyarrow table."""
    import pyarrow.compute as pc

    rows = max(table.num_rows, 1)
    out: dict[str, float] = {}
    for name in table.column_names:
        column = table.column(name)
        kind = column.type
        if _is_list(kind):
            flat = pc.list_flatten(column)
            total = _flat_bytes(flat)
        else:
            total = _flat_bytes(column)
        out[name] = total / rows
    return out


def _is_list(kind: Any) -> bool:
    import pyarrow as pa

    return bool(pa.types.is_list(kind) or pa.types.is_large_list(kind))


def _flat_bytes(column: Any) -> float:
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = column.type
    present = len(column) - column.null_count
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_binary(kind):
        lengths = pc.sum(pc.binary_length(column)).as_py() or 0
        return float(lengths + 2 * present)
    if pa.types.is_boolean(kind):
        return float(present)
    if pa.types.is_null(kind):
        return 0.0
    return float(8 * present)


# -- parsing --------------------------------------------------------------------------------
def _name(table: Any) -> str:
    parts = [table.catalog, table.db, table.name]
    return ".".join(part for part in parts if part)


@dataclass
class Read:
    """What one statement reads of one table: columns, and the partitions (None: all)."""

    columns: set[str] = field(default_factory=set)
    days: set[int] | None = field(default_factory=set)

    def add(self, columns: Iterable[str], days: set[int] | None) -> None:
        self.columns.update(columns)
        if self.days is not None:
            self.days = None if days is None else self.days | days


@dataclass
class Statement:
    """One statement's bill: bytes per table (after the minimum) and what kind it is."""

    kind: str
    tables: dict[str, float]

    @property
    def bytes(self) -> float:
        return sum(self.tables.values())


class Biller:
    """Bills statements against table sizes (physical name -> TableSize)."""

    def __init__(self, sizes: dict[str, TableSize], today: date) -> None:
        self.sizes = sizes
        self.today = today

    def job(self, sql: str, params: dict[str, Any]) -> list[Statement]:
        import sqlglot
        from sqlglot import exp

        out = []
        for tree in sqlglot.parse(sql, read="bigquery"):
            if tree is None or isinstance(tree, (exp.Transaction, exp.Commit, exp.Rollback)):
                continue
            out.append(self.statement(tree, params))
        return out

    def statement(self, tree: Any, params: dict[str, Any]) -> Statement:
        from sqlglot import exp

        reads: dict[str, Read] = {}
        kind = type(tree).__name__.lower()
        target: str | None = None
        target_days: set[int] | None = None
        if isinstance(tree, exp.Insert):
            source = tree.expression
            if source is not None and not isinstance(source, exp.Values):
                self._scan(source, params, reads)
        elif isinstance(tree, exp.Merge):
            target, target_days = self._merge(tree, params, reads)
        elif isinstance(tree, (exp.Update, exp.Delete)):
            target, target_days = self._update(tree, params, reads)
        else:
            self._scan(tree, params, reads)
        billed: dict[str, float] = {}
        for name, read in reads.items():
            size = self.sizes.get(name)
            if size is None or not read.columns:
                continue
            billed[name] = max(MINIMUM, size.bytes(read.columns, read.days))
        if target is not None and target in self.sizes:
            size = self.sizes[target]
            whole = size.bytes(size.columns, target_days)
            billed[target] = max(MINIMUM, billed.get(target, 0.0) + whole)
        return Statement(kind, billed)

    # -- DML ---------------------------------------------------------------------------------
    def _merge(
        self, tree: Any, params: dict[str, Any], reads: dict[str, Read]
    ) -> tuple[str, set[int] | None]:
        from sqlglot import exp

        target = tree.this
        alias = target.alias_or_name
        name = _name(target)
        source = tree.args.get("using")
        sources: dict[str, Any] = {alias: target}
        if isinstance(source, exp.Table):
            sources[source.alias_or_name] = source
        for column in tree.find_all(exp.Column):
            if _inside_subquery(column, tree):
                continue
            found = sources.get(column.table)
            if isinstance(found, exp.Table):
                reads.setdefault(_name(found), Read()).add([column.name], None)
        for sub in _subqueries(tree):
            self._scan(sub, params, reads)
        days = self._pruned(name, alias, tree.args.get("on"), params)
        return name, days

    def _update(
        self, tree: Any, params: dict[str, Any], reads: dict[str, Read]
    ) -> tuple[str, set[int] | None]:
        from sqlglot import exp

        target = tree.this
        alias, name = target.alias_or_name, _name(target)
        where = tree.args.get("where")
        for column in tree.find_all(exp.Column):
            if not _inside_subquery(column, tree) and column.table in ("", alias):
                reads.setdefault(name, Read()).add([column.name], None)
        for sub in _subqueries(tree):
            self._scan(sub, params, reads)
        return name, self._pruned(name, alias, where.this if where else None, params)

    # -- queries -----------------------------------------------------------------------------
    def _scan(self, tree: Any, params: dict[str, Any], reads: dict[str, Read]) -> None:
        """Every base table column each scope of a query reads."""
        from sqlglot import exp
        from sqlglot.optimizer.scope import traverse_scope

        for scope in traverse_scope(tree):
            tables = {
                alias: source
                for alias, source in scope.sources.items()
                if isinstance(source, exp.Table)
            }
            used: dict[str, set[str]] = {alias: set() for alias in tables}
            for column in scope.columns:
                if _select_of(column) is not scope.expression:
                    continue  # sqlglot lists a nested derived table's columns here too
                alias = column.table or self._owner(column.name, tables)
                if alias in used:
                    used[alias].add(column.name)
                elif alias and alias not in scope.sources:  # correlated: an outer table's
                    outer = _outer_source(scope, alias)
                    if isinstance(outer, exp.Table):
                        reads.setdefault(_name(outer), Read()).columns.add(column.name)
            for join in scope.expression.args.get("joins") or []:
                for ident in join.args.get("using") or []:  # JOIN ... USING (col)
                    for alias, table in tables.items():
                        if ident.name in self._columns_of(table):
                            used[alias].add(ident.name)
            for item in getattr(scope.expression, "expressions", []):  # the select list
                if isinstance(item, exp.Star):  # SELECT *: every table of the scope
                    for alias, table in tables.items():
                        used[alias].update(self._columns_of(table))
                elif (
                    isinstance(item, exp.Column)
                    and isinstance(item.this, exp.Star)
                    and item.table in tables  # SELECT t.*
                ):
                    used[item.table].update(self._columns_of(tables[item.table]))
            conditions = _conditions(scope.expression)
            for alias, table in tables.items():
                name = _name(table)
                days = self._pruned(name, alias, conditions, params)
                reads.setdefault(name, Read()).add(used[alias], days)

    def _owner(self, column: str, tables: dict[str, Any]) -> str:
        """The alias of the one table of the scope that has this column ('' if none or
        several: a select-list alias, say)."""
        owners = [a for a, t in tables.items() if column in self._columns_of(t)]
        return owners[0] if len(owners) == 1 else ""

    def _columns_of(self, table: Any) -> list[str]:
        size = self.sizes.get(_name(table))
        return list(size.columns) if size else []

    # -- partition pruning -------------------------------------------------------------------
    def _pruned(
        self, name: str, alias: str, condition: Any, params: dict[str, Any]
    ) -> set[int] | None:
        """The partitions (days ago) a constant filter on the partition column keeps;
        None: no such filter, every partition."""
        size = self.sizes.get(name)
        if size is not None and size.range_column and condition is not None:
            return self._range_pruned(size.range_column, alias, condition, params)
        if size is None or not size.partition_column or condition is None:
            return None
        low: date | None = None
        high: date | None = None
        found = False
        for part in _conjuncts(condition):
            bounds = self._bounds(part, alias, size.partition_column, params)
            if bounds is None:
                continue
            found = True
            lo, hi = bounds
            low = lo if low is None or (lo and lo > low) else low
            high = hi if high is None or (hi and hi < high) else high
        if not found:
            return None
        keep = set()
        for ago in size.days:
            day = self.today - timedelta(days=ago)
            if (low is None or day >= low) and (high is None or day <= high):
                keep.add(ago)
        return keep

    def _range_pruned(
        self, column: str, alias: str, condition: Any, params: dict[str, Any]
    ) -> set[int] | None:
        """The integer partitions an equality with a constant keeps."""
        from sqlglot import exp

        for part in _conjuncts(condition):
            if not isinstance(part, exp.EQ):
                continue
            for side, other in ((part.this, part.expression), (part.expression, part.this)):
                if not (isinstance(side, exp.Column) and side.name == column):
                    continue
                if side.table not in ("", alias):
                    continue
                if isinstance(other, exp.Literal) and not other.is_string:
                    return {int(other.this)}
                if isinstance(other, exp.Parameter) and isinstance(
                    params.get(other.this.name), int
                ):
                    return {int(params[other.this.name])}
        return None

    def _bounds(
        self, part: Any, alias: str, column: str, params: dict[str, Any]
    ) -> tuple[date | None, date | None] | None:
        from sqlglot import exp

        def is_partition(node: Any) -> bool:
            return (
                isinstance(node, exp.Column) and node.name == column and (node.table in ("", alias))
            )

        if isinstance(part, exp.Between) and is_partition(part.this):
            lo, hi = _constant(part.args["low"], params), _constant(part.args["high"], params)
            return (lo.date(), hi.date()) if lo and hi else None
        if not isinstance(part, (exp.GTE, exp.GT, exp.LTE, exp.LT, exp.EQ)):
            return None
        left, right = part.this, part.expression
        flipped = False
        if is_partition(right) and not is_partition(left):
            left, right, flipped = right, left, True
        if not is_partition(left):
            return None
        value = _constant(right, params)
        if value is None:
            return None
        day = value.date()
        if isinstance(part, exp.EQ):
            return day, day
        if isinstance(part, (exp.GTE, exp.GT)) != flipped:
            return day, None
        strict = isinstance(part, exp.LT) != flipped and not isinstance(part, exp.LTE)
        # `< midnight` keeps nothing of that day
        return None, (value - timedelta(microseconds=1)).date() if strict else day


def _constant(node: Any, params: dict[str, Any]) -> datetime | None:
    """The moment a constant (a parameter or a literal, maybe cast, maybe moved by whole
    days) stands for; None for anything else."""
    from sqlglot import exp

    if isinstance(node, exp.Cast):
        return _constant(node.this, params)
    if isinstance(node, (exp.Parameter, exp.Placeholder)):
        name = node.name if isinstance(node, exp.Placeholder) else node.this.name
        return _moment(params.get(name))
    if isinstance(node, exp.Literal) and node.is_string:
        try:
            return _moment(datetime.fromisoformat(node.this))
        except ValueError:
            return None
    if isinstance(node, (exp.TimestampSub, exp.DateSub, exp.TimestampAdd, exp.DateAdd)):
        base = _constant(node.this, params)
        amount = node.expression
        unit = str(node.args.get("unit") or "DAY").upper()
        if base is None or not isinstance(amount, exp.Literal) or "DAY" not in unit:
            return None
        days = int(amount.this)
        sign = -1 if isinstance(node, (exp.TimestampSub, exp.DateSub)) else 1
        return base + timedelta(days=sign * days)
    return None


def _moment(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=timezone.utc)
    return None


def _conjuncts(condition: Any) -> list[Any]:
    from sqlglot import exp

    if isinstance(condition, list):
        return [part for item in condition for part in _conjuncts(item)]
    if isinstance(condition, exp.Paren):
        return _conjuncts(condition.this)
    if isinstance(condition, exp.And):
        return _conjuncts(condition.this) + _conjuncts(condition.expression)
    return [condition]


def _conditions(select: Any) -> list[Any]:
    """The WHERE and JOIN ... ON conditions of one SELECT (not of its subqueries)."""
    out = []
    where = select.args.get("where")
    if where is not None:
        out.append(where.this)
    for join in select.args.get("joins") or []:
        on = join.args.get("on")
        if on is not None:
            out.append(on)
    return out


def _outer_source(scope: Any, alias: str) -> Any:
    parent = scope.parent
    while parent is not None:
        if alias in parent.sources:
            return parent.sources[alias]
        parent = parent.parent
    return None


def _select_of(node: Any) -> Any:
    """The SELECT a column belongs to: its nearest enclosing one."""
    from sqlglot import exp

    parent = node.parent
    while parent is not None and not isinstance(parent, exp.Select):
        parent = parent.parent
    return parent


def _inside_subquery(node: Any, root: Any) -> bool:
    from sqlglot import exp

    parent = node.parent
    while parent is not None and parent is not root:
        if isinstance(parent, exp.Select):
            return True
        parent = parent.parent
    return False


def _subqueries(tree: Any) -> list[Any]:
    """The outermost SELECTs inside a DML statement."""
    from sqlglot import exp

    found = []
    for node in tree.find_all(exp.Select):
        if not _inside_subquery(node, tree):
            found.append(node)
    return found
