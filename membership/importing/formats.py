"""The CSV formats a POS may export: columns per kind, which are required, and their header aliases."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field


class HeaderError(ValueError):
    """The header row cannot be used: a required column is missing or a column appears twice."""


@dataclass(frozen=True)
class Column:
    """One logical column; ``aliases`` are the header spellings accepted besides ``key``."""

    key: str
    required: bool = False
    aliases: tuple[str, ...] = ()
    doc: str = ""


@dataclass(frozen=True)
class Format:
    """The columns of one import kind, keyed by the external id that makes re-imports idempotent."""

    kind: str
    key: str
    columns: tuple[Column, ...]
    _lookup: dict[str, str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        lookup = {}
        for column in self.columns:
            for spelling in (column.key, *column.aliases):
                lookup[normalise_header(spelling)] = column.key
        object.__setattr__(self, "_lookup", lookup)

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(c.key for c in self.columns if c.required)

    def resolve(self, header: str) -> str | None:
        """The column key a header names, or None when it is not one of ours."""
        return self._lookup.get(normalise_header(header))


def normalise_header(text: str) -> str:
    """Case, width, spaces, underscores and hyphens do not matter: "Card_No" == "card no" == "ＣＡＲＤ－ＮＯ"."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return "".join(ch for ch in text if ch not in " _-\t\ufeff")


_STORE = Column(
    "store", aliases=("store_code", "门店", "门店编码", "门店代码", "店铺", "店号"), doc="store code"
)
_CARD = Column(
    "card_number",
    required=True,
    aliases=("card", "card_no", "member_card", "会员卡号", "卡号", "会员号", "会员编号"),
    doc="the member's loyalty card number (the member's key)",
)
_SKU = Column(
    "sku",
    required=True,
    aliases=("product_code", "item_code", "商品编码", "商品代码", "货号", "商品编号", "条码"),
    doc="the product's SKU (the product's key)",
)

MEMBERS = Format(
    "members",
    key="card_number",
    columns=(
        _CARD,
        Column("name", required=True, aliases=("full_name", "姓名", "会员姓名", "名字"), doc="full name"),
        Column("preferred_name", aliases=("nickname", "称呼", "昵称"), doc="how messages address them"),
        Column("phone", aliases=("mobile", "手机", "手机号", "手机号码", "电话", "联系电话"), doc="phone"),
        Column("email", aliases=("e-mail", "mail", "邮箱", "电子邮箱", "电子邮件", "邮件地址"), doc="e-mail"),
        Column("locale", aliases=("language", "语言"), doc="message language, e.g. zh-CN, en"),
        Column("timezone", aliases=("time_zone", "时区"), doc="IANA time zone, e.g. Asia/Shanghai"),
        Column("tier", aliases=("level", "等级", "会员等级"), doc="membership tier"),
        Column(
            "interests", aliases=("sports", "兴趣", "爱好", "运动爱好"), doc="sports, separated by ; | 、"
        ),
        Column("joined_at", aliases=("join_date", "joined", "入会日期", "注册日期", "开卡日期"), doc="date"),
        Column("sms_consent", aliases=("sms_opt_in", "短信同意", "接受短信", "短信营销"), doc="yes/no"),
        Column("email_consent", aliases=("email_opt_in", "邮件同意", "接受邮件", "邮件营销"), doc="yes/no"),
        _STORE,
    ),
)

PRODUCTS = Format(
    "products",
    key="sku",
    columns=(
        _SKU,
        Column("name", required=True, aliases=("product_name", "商品名称", "品名", "名称"), doc="name"),
        Column(
            "category", aliases=("category_code", "类别", "类别编码", "品类", "分类"), doc="category code"
        ),
        Column("category_name", aliases=("类别名称", "品类名称", "分类名称"), doc="name for a new category"),
        Column("price", aliases=("unit_price", "价格", "单价", "零售价"), doc="decimal, 2 places"),
        Column(
            "lifetime_days",
            aliases=("lifetime_prior_days", "使用寿命", "寿命天数", "使用天数"),
            doc="the marketer's prior: days a unit usually lasts",
        ),
    ),
)

PURCHASES = Format(
    "purchases",
    key="line_id",
    columns=(
        Column(
            "line_id",
            required=True,
            aliases=("external_line_id", "order_line_id", "订单行号", "明细编号", "明细号", "流水号"),
            doc="the POS's unique id of the order line (the purchase's key)",
        ),
        _CARD,
        _SKU,
        Column(
            "purchased_at",
            required=True,
            aliases=("date", "purchase_date", "购买日期", "购买时间", "交易日期", "交易时间", "销售日期"),
            doc="date or date and time, store local time unless an offset is given",
        ),
        Column("quantity", aliases=("qty", "数量"), doc="whole units, default 1"),
        Column(
            "amount", aliases=("total", "金额", "实付金额", "销售金额", "成交金额"), doc="decimal, 2 places"
        ),
        _STORE,
    ),
)

FORMATS = {f.kind: f for f in (MEMBERS, PRODUCTS, PURCHASES)}
KINDS = tuple(FORMATS)


def match_header(kind: str, header: list[str]) -> list[str | None]:
    """Map each header cell to a column key (None: ignored); refuse duplicates and missing required ones."""
    fmt = FORMATS[kind]
    keys = [fmt.resolve(cell) for cell in header]
    seen: set[str] = set()
    for cell, key in zip(header, keys, strict=True):
        if key is None:
            continue
        if key in seen:
            raise HeaderError(f"column {key!r} appears twice (header {cell!r})")
        seen.add(key)
    missing = [k for k in fmt.required if k not in seen]
    if missing:
        raise HeaderError(f"missing required column(s) for {kind}: {', '.join(missing)}")
    return keys
