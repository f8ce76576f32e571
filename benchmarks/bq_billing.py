"""BigQuery's on-demand bill of a job, computed from its SQL and the tables' sizes.

The rules (BigQuery's on-demand pricing and DML pricing pages):

- a query bills the bytes of every column it references, over the whole table, unless
  the table is partitioned and a filter on the partition column compares it with a
  constant (a subquery never prunes). Constants are literals, query parameters and a
  script's variables: `col = c`, `col < c` (and the other comparisons), `col BETWEEN c AND
  d`, `col IN (c, d)`, `col IN UNNEST(@list)`, `col IN UNNEST(variable)`. A day-partitioned
  table keeps the days its constants fall on (a list of timestamps: each one's day); an
  integer-range partitioned one the values named;
- a table referenced several times in one statement is read once: the union of its
  columns, over the union of the partitions its references read;
- at least 10 MiB per table read, per statement (a table of which no column is read,
  ``COUNT(*)`` alone, bills nothing);
- INSERT bills what its SELECT reads; MERGE, UPDATE and DELETE bill that plus every
  column of the target over the partitions they touch (the whole table when it is not
  partitioned or not pruned);
- a script bills the sum of its statements, in order (BEGIN/COMMIT bill nothing). A
  `DECLARE name TYPE DEFAULT (subquery)` bills its subquery like a query, and binds the
  variable to the subquery's value, computed from the values the tables' sizes know (the
  lowest, highest or distinct values of a staged column, over the partitions read);
- data sizes: INT64, FLOAT64, TIMESTAMP, DATE 8 bytes, BOOL 1, STRING and BYTES 2 +
  their length, an ARRAY the sum of its elements, NULL 0.

Clustering is left out: it can cut the bytes of a filtered read below this figure, and
BigQuery's own estimate (the dry run) leaves it out too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

MIB = 2**20
MINIMUM = 10 * MIB


# -- sizes ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class ColumnValues:
    """What a script's DECLARE can compute of a column: its lowest and highest value, and
    (integers) its distinct values."""

    low: Any = None
    high: Any = None
    distinct: frozenset[Any] = frozenset()

    def merged(self, other: ColumnValues) -> ColumnValues:
        lows = [v for v in (self.low, other.low) if v is not None]
        highs = [v for v in (self.high, other.high) if v is not None]
        return ColumnValues(
            min(lows, default=None), max(highs, default=None), self.distinct | other.distinct
        )


@dataclass
class TableSize:
    """Average bytes per row of each column, and the rows (per partition day when the
    table is partitioned by day: days ago -> rows, 0 being today)."""

    columns: dict[str, float]
    rows: int = 0
    partition_column: str | None = None
    days: dict[int, int] = field(default_factory=dict)
    # integer-range partitioned (the state table by stage, a staging table by frame):
    # value -> that partition's size
    range_column: str | None = None
    parts: dict[int, TableSize] = field(default_factory=dict)
    # the values a DECLARE reads of some columns (staged rows)
    values: dict[str, ColumnValues] = field(default_factory=dict)

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

    def column_values(self, name: str, keep: set[int] | None) -> ColumnValues | None:
        """What is known of a column's values over the partitions kept (None: nothing)."""
        if not self.range_column:
            return self.values.get(name)
        found = None
        for value, part in sorted(self.parts.items()):
            if keep is not None and value not in keep:
                continue
            known = part.column_values(name, None)
            if known is not None:
                found = known if found is None else found.merged(known)
        return found


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


def arrow_column_values(table: Any) -> dict[str, ColumnValues]:
    """The lowest and highest value of each integer and timestamp column of a pyarrow
    table, and the distinct values of its integer columns (what a DECLARE may compute)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    out: dict[str, ColumnValues] = {}
    for name in table.column_names:
        column = table.column(name)
        kind = column.type
        integer = pa.types.is_integer(kind)
        if not (integer or pa.types.is_timestamp(kind)) or column.null_count == len(column):
            continue
        bounds = pc.min_max(column).as_py()
        distinct = frozenset(pc.unique(column).drop_null().to_pylist()) if integer else frozenset()
        out[name] = ColumnValues(bounds["min"], bounds["max"], distinct)
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
    """One statement's bill: bytes per table (after the minimum), what kind it is, and
    (from ``Biller.job``) its SQL."""

    kind: str
    tables: dict[str, float]
    sql: str = ""

    @property
    def bytes(self) -> float:
        return sum(self.tables.values())


@dataclass
class Values:
    """What the constants of a statement stand for: its job's query parameters (``@name``)
    and the variables its script DECLAREd before it (``name``; case-insensitive)."""

    params: dict[str, Any] = field(default_factory=dict)
    variables: dict[str, Any] = field(default_factory=dict)

    def of(self, node: Any) -> Any:
        """A parameter's or a variable's value; None for anything else (or unknown)."""
        from sqlglot import exp

        if isinstance(node, exp.Placeholder):
            return self.params.get(node.name)
        if isinstance(node, exp.Parameter):
            return self.params.get(node.this.name)
        if isinstance(node, exp.Column) and not node.table:
            return self.variables.get(node.name.lower())
        return None


class Biller:
    """Bills statements against table sizes (physical name -> TableSize).

    ``days_ago`` places a moment in the day-partitioned tables' history (0: today); by
    default its calendar day (UTC) counted back from ``today``."""

    def __init__(
        self,
        sizes: dict[str, TableSize],
        today: date,
        days_ago: Callable[[datetime], int] | None = None,
    ) -> None:
        self.sizes = sizes
        self.today = today
        self.days_ago = days_ago or self._calendar_days_ago

    def _calendar_days_ago(self, moment: datetime) -> int:
        return (self.today - moment.astimezone(timezone.utc).date()).days

    def job(self, sql: str, params: dict[str, Any]) -> list[Statement]:
        """Every statement of a job, in order: a script's variables hold from their
        DECLARE on."""
        import sqlglot
        from sqlglot import exp

        values = Values(dict(params))
        out = []
        for tree in sqlglot.parse(sql, read="bigquery"):
            if tree is None or isinstance(tree, (exp.Transaction, exp.Commit, exp.Rollback)):
                continue
            if isinstance(tree, exp.Declare):
                found = self._declare(tree, values)
            else:
                found = self.statement(tree, values)
            found.sql = tree.sql(dialect="bigquery")
            out.append(found)
        return out

    def statement(self, tree: Any, params: dict[str, Any] | Values) -> Statement:
        from sqlglot import exp

        values = params if isinstance(params, Values) else Values(dict(params))
        reads: dict[str, Read] = {}
        kind = type(tree).__name__.lower()
        target: str | None = None
        target_days: set[int] | None = None
        if isinstance(tree, exp.Insert):
            source = tree.expression
            if source is not None and not isinstance(source, exp.Values):
                self._scan(source, values, reads)
        elif isinstance(tree, exp.Merge):
            target, target_days = self._merge(tree, values, reads)
        elif isinstance(tree, (exp.Update, exp.Delete)):
            target, target_days = self._update(tree, values, reads)
        else:
            self._scan(tree, values, reads)
        billed = self._billed(reads)
        if target is not None and target in self.sizes:
            size = self.sizes[target]
            whole = size.bytes(size.columns, target_days)
            billed[target] = max(MINIMUM, billed.get(target, 0.0) + whole)
        return Statement(kind, billed)

    def _billed(self, reads: dict[str, Read]) -> dict[str, float]:
        billed: dict[str, float] = {}
        for name, read in reads.items():
            size = self.sizes.get(name)
            if size is None or not read.columns:
                continue
            billed[name] = max(MINIMUM, size.bytes(read.columns, read.days))
        return billed

    # -- script variables --------------------------------------------------------------------
    def _declare(self, tree: Any, values: Values) -> Statement:
        """A DECLARE: its DEFAULT billed like a query; its variables bound to the value."""

        reads: dict[str, Read] = {}
        for item in tree.expressions:
            default = item.args.get("default")
            value = None if default is None else self._default(default, values, reads)
            names = item.this if isinstance(item.this, list) else [item.this]
            for name in names:
                values.variables[name.name.lower()] = value
        return Statement("declare", self._billed(reads))

    def _default(self, node: Any, values: Values, reads: dict[str, Read]) -> Any:
        """A DECLARE's DEFAULT: a subquery (its reads added to ``reads``), ARRAY_CONCAT of
        array ones, or a constant; None when its value is not known."""
        from sqlglot import exp

        if isinstance(node, exp.Subquery):
            select = node.unnest()
            self._scan(select, values, reads)
            return self._evaluate(select, values)
        if isinstance(node, exp.ArrayConcat):
            parts = [self._default(part, values, reads) for part in [node.this, *node.expressions]]
            if any(not isinstance(part, list) for part in parts):
                return None
            return [value for part in parts for value in part]
        return _constant(node, values)

    def _evaluate(self, select: Any, values: Values) -> Any:
        """The value of ``SELECT MIN(col)``, ``MAX(col)``, ``ARRAY_AGG(DISTINCT col)`` or
        an array of such (``[MIN(col), MAX(col)]``) over a table (or a derived table of
        it), from the values its size knows of the column in the partitions read; None for
        any other subquery or nothing known (a variable then prunes nothing). Filters on
        other columns are not applied: the subqueries bggscore writes have none."""
        from sqlglot import exp

        if not isinstance(select, exp.Select) or len(select.expressions) != 1:
            return None
        selected = select.expressions[0].unalias()
        if isinstance(selected, exp.Array):
            found = [self._aggregate(select, item, values) for item in selected.expressions]
            return None if any(value is None for value in found) else found
        return self._aggregate(select, selected, values)

    def _aggregate(self, select: Any, aggregate: Any, values: Values) -> Any:
        """One aggregate of ``_evaluate``'s over the select's source."""
        from sqlglot import exp
        from sqlglot.optimizer.scope import build_scope

        if isinstance(aggregate, (exp.Min, exp.Max)):
            column = aggregate.this
        elif (
            isinstance(aggregate, exp.ArrayAgg)
            and isinstance(aggregate.this, exp.Distinct)
            and len(aggregate.this.expressions) == 1
        ):
            column = aggregate.this.expressions[0]
        else:
            return None
        scope = build_scope(select)
        if not isinstance(column, exp.Column) or scope is None:
            return None
        known = self._traced(scope, column.table, column.name, values)
        if known is None:
            return None
        if isinstance(aggregate, exp.Min):
            return known.low
        if isinstance(aggregate, exp.Max):
            return known.high
        return sorted(known.distinct) or None

    def _traced(self, scope: Any, alias: str, name: str, values: Values) -> ColumnValues | None:
        """What is known of a column of one scope's source, followed through derived
        tables down to the base table and the partitions the query reads of it."""
        from sqlglot import exp
        from sqlglot.optimizer.scope import Scope

        if not alias and len(scope.sources) == 1:
            alias = next(iter(scope.sources))
        source = scope.sources.get(alias)
        if isinstance(source, exp.Table):
            table = _name(source)
            size = self.sizes.get(table)
            if size is None:
                return None
            keep = self._pruned(table, alias, _conditions(scope.expression), values)
            return size.column_values(name, keep)
        if isinstance(source, Scope):
            for item in getattr(source.expression, "selects", []):
                inner = item.unalias()
                if item.alias_or_name == name and isinstance(inner, exp.Column):
                    return self._traced(source, inner.table, inner.name, values)
        return None

    # -- DML ---------------------------------------------------------------------------------
    def _merge(
        self, tree: Any, values: Values, reads: dict[str, Read]
    ) -> tuple[str, set[int] | None]:
        from sqlglot import exp

        target = tree.this
        alias = target.alias_or_name
        name = _name(target)
        source = tree.args.get("using")
        sources: dict[str, Any] = {alias: target}
        if isinstance(source, exp.Table):
            sources[source.alias_or_name] = source
        days = self._pruned(name, alias, tree.args.get("on"), values)
        for column in tree.find_all(exp.Column):
            if _inside_subquery(column, tree):
                continue
            found = sources.get(column.table)
            if isinstance(found, exp.Table):  # the target's over the partitions it touches
                kept = days if found is target else None
                reads.setdefault(_name(found), Read()).add([column.name], kept)
        for sub in _subqueries(tree):
            self._scan(sub, values, reads)
        return name, days

    def _update(
        self, tree: Any, values: Values, reads: dict[str, Read]
    ) -> tuple[str, set[int] | None]:
        from sqlglot import exp

        target = tree.this
        alias, name = target.alias_or_name, _name(target)
        where = tree.args.get("where")
        for column in tree.find_all(exp.Column):
            ours = column.table == alias or (
                not column.table and column.name.lower() not in values.variables
            )
            if ours and not _inside_subquery(column, tree):
                reads.setdefault(name, Read()).add([column.name], None)
        for sub in _subqueries(tree):
            self._scan(sub, values, reads)
        return name, self._pruned(name, alias, where.this if where else None, values)

    # -- queries -----------------------------------------------------------------------------
    def _scan(self, tree: Any, values: Values, reads: dict[str, Read]) -> None:
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
                days = self._pruned(name, alias, conditions, values)
                reads.setdefault(name, Read()).add(used[alias], days)

    def _owner(self, column: str, tables: dict[str, Any]) -> str:
        """The alias of the one table of the scope that has this column ('' if none or
        several: a select-list alias, or a script variable, say)."""
        owners = [a for a, t in tables.items() if column in self._columns_of(t)]
        return owners[0] if len(owners) == 1 else ""

    def _columns_of(self, table: Any) -> list[str]:
        size = self.sizes.get(_name(table))
        return list(size.columns) if size else []

    # -- partition pruning -------------------------------------------------------------------
    # A script variable prunes as a literal or a parameter does: BigQuery's page on
    # multi-statement queries says a dry run "is unable to calculate the runtime value of
    # variables in a partition filter" (so its estimate is off), i.e. the run itself uses
    # that value to prune (docs.cloud.google.com/bigquery/docs/multi-statement-queries,
    # "Dry run a multi-statement query"); only a filter computed by a subquery in the same
    # statement is dynamic and scans every partition
    # (docs.cloud.google.com/bigquery/docs/querying-partitioned-tables).
    def _pruned(self, name: str, alias: str, condition: Any, values: Values) -> set[int] | None:
        """The partitions (days ago, or integer values) the constant filters on the
        partition column keep; None: no such filter, every partition."""
        size = self.sizes.get(name)
        if size is None or condition is None:
            return None
        column = size.range_column or size.partition_column
        if column is None:
            return None
        keep: set[int] | None = None
        for part in _conjuncts(condition):
            found = self._kept(size, column, alias, part, values)
            if found is not None:
                keep = found if keep is None else keep & found
        return keep

    def _kept(
        self, size: TableSize, column: str, alias: str, part: Any, values: Values
    ) -> set[int] | None:
        """The partitions one conjunct keeps; None: it does not bound the partition column
        by constants."""
        from sqlglot import exp

        def is_key(node: Any) -> bool:
            return (
                isinstance(node, exp.Column) and node.name == column and node.table in ("", alias)
            )

        if isinstance(part, exp.In) and is_key(part.this):
            listed = _listed(part, values)
            return None if listed is None else self._keys(size, listed)
        if isinstance(part, exp.Between) and is_key(part.this):
            low = _constant(part.args["low"], values)
            high = _constant(part.args["high"], values)
            if size.range_column:
                if not (_is_int(low) and _is_int(high)):
                    return None
                return {value for value in size.parts if low <= value <= high}
            since, until = _moment(low), _moment(high)
            if since is None or until is None:
                return None
            newest, oldest = self.days_ago(until), self.days_ago(since)
            return {ago for ago in size.days if newest <= ago <= oldest}
        comparison = _comparison(part, is_key)
        if comparison is None:
            return None
        op, node = comparison
        value = _constant(node, values)
        if op == "=":
            return self._keys(size, [value])
        if size.range_column:
            return None  # bggscore compares stage partitions by equality only
        moment = _moment(value)
        if moment is None:
            return None
        if op in (">=", ">"):  # from that day on
            return {ago for ago in size.days if ago <= self.days_ago(moment)}
        if op == "<":  # `< midnight` keeps nothing of that day
            moment -= timedelta(microseconds=1)
        return {ago for ago in size.days if ago >= self.days_ago(moment)}

    def _keys(self, size: TableSize, listed: list[Any]) -> set[int] | None:
        """The partitions holding these values of the partition column."""
        if size.range_column:
            if not all(_is_int(value) for value in listed):
                return None
            return {int(value) for value in listed}
        moments = [_moment(value) for value in listed]
        if any(moment is None for moment in moments):
            return None
        return {self.days_ago(moment) for moment in moments if moment is not None}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _comparison(part: Any, is_key: Callable[[Any], bool]) -> tuple[str, Any] | None:
    """``(op, other side)`` of a comparison of the partition column, the column on the
    left (``@x <= col`` reads ``col >= @x``); None for anything else."""
    from sqlglot import exp

    ops = {exp.EQ: "=", exp.GTE: ">=", exp.GT: ">", exp.LTE: "<=", exp.LT: "<"}
    flipped = {"=": "=", ">=": "<=", ">": "<", "<=": ">=", "<": ">"}
    op = ops.get(type(part))
    if op is None:
        return None
    left, right = part.this, part.expression
    if is_key(left) and not is_key(right):
        return op, right
    if is_key(right) and not is_key(left):
        return flipped[op], left
    return None


def _listed(part: Any, values: Values) -> list[Any] | None:
    """The constants ``col IN (...)`` or ``col IN UNNEST(list)`` names (a list parameter
    or variable); None when any is not a constant (a subquery, a column)."""
    from sqlglot import exp

    if part.args.get("query") is not None:
        return None
    unnest = part.args.get("unnest")
    if isinstance(unnest, exp.Unnest):
        if len(unnest.expressions) != 1:
            return None
        found = _constant(unnest.expressions[0], values)
        return list(found) if isinstance(found, (list, tuple)) else None
    items = [_constant(item, values) for item in part.expressions]
    return None if not items or any(item is None for item in items) else items


def _constant(node: Any, values: Values) -> Any:
    """The value a constant stands for: a parameter, a script variable, a literal (maybe
    cast, a moment maybe moved by whole days); None for anything else."""
    from sqlglot import exp

    if isinstance(node, exp.Cast):
        return _constant(node.this, values)
    if isinstance(node, (exp.Parameter, exp.Placeholder, exp.Column)):
        return values.of(node)
    if isinstance(node, exp.Bracket) and len(node.expressions) == 1:
        # an array variable's element: name[OFFSET(i)] (sqlglot: offset 0), name[ORDINAL(i)]
        items, index = _constant(node.this, values), _constant(node.expressions[0], values)
        position = index - int(node.args.get("offset") or 0) if isinstance(index, int) else -1
        if isinstance(items, list) and 0 <= position < len(items):
            return items[position]
        return None
    if isinstance(node, exp.Literal):
        if not node.is_string:
            number = float(node.this)
            return int(number) if number.is_integer() and "." not in node.this else number
        try:
            return _moment(datetime.fromisoformat(node.this))
        except ValueError:
            return node.this
    if isinstance(node, (exp.TimestampSub, exp.DateSub, exp.TimestampAdd, exp.DateAdd)):
        base = _moment(_constant(node.this, values))
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
