"""A deterministic synthetic population of subject bundles for the benchmark.

    python -m bench.population 100000 out/population.jsonl [--seed 20250630]

`generate(n, seed=...)` yields bundle dicts in the JSONL bundle format. The mix follows the
benchmark issue, against the evaluation date AS_OF (2025-06-30):

- about 90% "quiet" subjects with 1-5 records that should trigger nothing: general penalties
  older than a year, serious ones older than three years, B or M tax credit ratings, list
  entries that expired or were repaired/revoked long ago, old watch-list entries, and
  (for a few percent of companies) a legal representative relation;
- about 8% with exactly one active black-list entry listed within the last year, spread
  over the eight black lists of BLACK_LISTS, plus 0-3 quiet records;
- about 2% red-listed: a recent tax credit grade A, customs advanced certification or
  守合同重信用; about one in twelve of them is also on a black list (incentives suspended);
- a few percent of companies (more among listed ones) carry a legal representative relation,
  and sometimes a financial officer, to a natural person included in `related`.

Every code is valid (GB 32100 / GB 11643 check characters) and unique in the population;
record ids are unique within a bundle. The same (n, seed) always gives the same bundles,
and generate(m) is a prefix of generate(n) for m < n.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
from datetime import date, timedelta
from typing import Iterator

from engine.codes import USCC_ALPHABET, citizen_id_check_char, uscc_check_char

__all__ = ["AS_OF", "BLACK_LISTS", "RED_LISTS", "DEFAULT_SEED", "generate", "main"]

AS_OF = date(2025, 6, 30)
DEFAULT_SEED = 20250630

# Group shares of the population.
SHARE_BLACK = 0.08
SHARE_RED = 0.02
RED_ALSO_BLACK = 0.08

# Dazhou administrative areas (GB/T 2260).
AREAS = {
    "511700": "达州市",
    "511702": "通川区",
    "511703": "达川区",
    "511722": "宣汉县",
    "511723": "开江县",
    "511724": "大竹县",
    "511725": "渠县",
    "511781": "万源市",
}
AREA_CODES = list(AREAS)
AREA_WEIGHTS = [18, 22, 16, 12, 6, 10, 10, 6]

# The eight black lists the benchmark spreads its listed subjects over:
# list -> (weight, listing department, document pattern, subject kinds with weights, industries)
BLACK_LISTS = {
    "tax.major_violation": (15, "tax", "达税稽罚〔{y}〕{n}号",
                            {"legal_person": 85, "individual_business": 15},
                            ["贸易", "建材", "商贸", "物资"]),
    "court.judgment_defaulter": (25, "court", "（{y}）川17执{n}号",
                                 {"natural_person": 60, "legal_person": 35, "individual_business": 5},
                                 ["房地产开发", "商贸", "建筑工程", "实业"]),
    "procurement.serious_violation": (10, "finance", "达市财采〔{y}〕{n}号",
                                      {"legal_person": 100},
                                      ["科技", "办公设备", "医疗器械", "信息技术"]),
    "safety.dishonest": (10, "emergency", "达应急罚〔{y}〕{n}号",
                         {"legal_person": 100}, ["煤业", "矿业", "化工", "爆破工程"]),
    "environment.serious_violation": (10, "ecology", "达环罚〔{y}〕{n}号",
                                      {"legal_person": 100}, ["化工", "造纸", "生猪养殖", "建材"]),
    "statistics.serious_dishonest": (8, "statistics", "达统罚〔{y}〕{n}号",
                                     {"legal_person": 100}, ["实业", "机械制造", "食品"]),
    "construction.blacklist": (12, "housing", "达住建罚〔{y}〕{n}号",
                               {"legal_person": 100}, ["建筑工程", "建设", "市政工程", "劳务"]),
    "market.serious_illegal": (10, "market", "达市监处罚〔{y}〕{n}号",
                               {"legal_person": 80, "individual_business": 20},
                               ["食品", "商贸", "药业", "电子商务"]),
}
BLACK_CODES = list(BLACK_LISTS)
BLACK_WEIGHTS = [v[0] for v in BLACK_LISTS.values()]

RED_LISTS = ("customs.advanced_certified", "market.contract_abiding")

# Publication maximum and default term, in years, for the lists quiet records use.
_TERM_YEARS = {
    "tax.major_violation": 3, "court.judgment_defaulter": 2, "procurement.serious_violation": 3,
    "safety.dishonest": 1, "environment.serious_violation": 3, "statistics.serious_dishonest": 1,
    "construction.blacklist": 1, "market.serious_illegal": 3, "market.abnormal_operation": 3,
}

# Departments that impose administrative penalties, with the code they had before the
# 2018-2019 reorganisations (a record decided then names the old bureau).
_PENALTY_DEPTS = [
    ("market", "aic", date(2019, 1, 15)),
    ("market", "quality", date(2019, 1, 15)),
    ("market", "food_drug", date(2019, 1, 15)),
    ("tax", "local_tax", date(2018, 7, 20)),
    ("tax", "state_tax", date(2018, 7, 20)),
    ("ecology", "environment", date(2019, 1, 15)),
    ("emergency", "safety", date(2019, 1, 15)),
    ("housing", None, None),
    ("transport", None, None),
    ("natural_resources", "land", date(2019, 1, 15)),
    ("hrss", None, None),
    ("health", "health_family", date(2019, 1, 15)),
]
_PENALTY_DOC = {
    "market": "达市监处罚〔{y}〕{n}号", "aic": "达工商处字〔{y}〕{n}号", "quality": "达质监罚〔{y}〕{n}号",
    "food_drug": "达食药监罚〔{y}〕{n}号", "tax": "达税罚〔{y}〕{n}号", "local_tax": "达地税罚〔{y}〕{n}号",
    "state_tax": "达国税罚〔{y}〕{n}号", "ecology": "达环罚〔{y}〕{n}号", "environment": "达环罚〔{y}〕{n}号",
    "emergency": "达应急罚〔{y}〕{n}号", "safety": "达安监罚〔{y}〕{n}号", "housing": "达住建罚〔{y}〕{n}号",
    "transport": "达交执罚〔{y}〕{n}号", "natural_resources": "达自然资罚〔{y}〕{n}号",
    "land": "达国土资罚〔{y}〕{n}号", "hrss": "达人社监罚〔{y}〕{n}号", "health": "达卫健罚〔{y}〕{n}号",
    "health_family": "达卫计罚〔{y}〕{n}号",
}

_SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘蒋蔡余杜叶程魏苏吕丁任沈姚卢姜崔钟谭陆汪范廖石金贾夏付方邹熊白孟秦邱侯江尹薛闫段雷龙史陶贺毛郝顾龚邵万覃武钱戴严莫孔向汤"
_GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华玉兰红建国志文海波宇浩然鑫燕琳斌林辉晓东亮成雪梅俊峰琴云飞凤莉婷丹彬蓉川渝巴达宣竹"
_TRADE = ["金鑫", "宏达", "川东", "巴山", "鑫源", "恒通", "达兴", "蜀汇", "凤凰", "州河", "华蓥", "天源",
          "瑞丰", "兴隆", "永盛", "万通", "秦巴", "明月", "通达", "聚源", "锦程", "长城", "安宏", "博远",
          "嘉禾", "润泽", "盛世", "新合", "佳和", "汇丰", "莲花", "龙腾", "宝鼎", "丰源", "益民", "东柳"]
_INDUSTRY = ["贸易", "建材", "商贸", "建筑工程", "农业开发", "科技", "物流", "餐饮管理", "实业", "食品",
             "机械制造", "房地产开发", "劳务", "信息技术", "生物科技", "文化传媒", "运输", "医药", "能源", "置业"]
_SHOP = ["便利店", "餐馆", "五金店", "副食店", "火锅店", "服装店", "汽修店", "茶楼", "药店", "理发店"]
_ORG_NAMES = ["{place}{trade}职业技能培训学校", "{place}{trade}养老服务中心", "达州市{trade}行业协会",
              "{place}{trade}幼儿园", "达州市{trade}商会"]
_ORG_CODE_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"


def _add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February
        return day.replace(year=day.year + years, day=28)


def _org_code_check(body8: str) -> str:
    """GB 11714 organisation code check character for the first eight characters."""
    weights = (3, 7, 9, 10, 5, 8, 4, 2)
    total = sum((int(c) if c.isdigit() else ord(c) - 55) * w for c, w in zip(body8, weights))
    check = 11 - total % 11
    return "X" if check == 10 else "0" if check == 11 else str(check)


class _Population:
    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.codes: set[str] = set()
        self.doc_no = 0

    # -- helpers -------------------------------------------------------------------------
    def day_between(self, start: date, end: date) -> date:
        return start + timedelta(days=self.rng.randint(0, (end - start).days))

    def area(self) -> str:
        return self.rng.choices(AREA_CODES, AREA_WEIGHTS)[0]

    def document(self, pattern: str, day: date) -> str:
        self.doc_no += 1
        return pattern.format(y=day.year, n=1 + self.doc_no % 997)

    def uscc(self, prefix2: str) -> str:
        while True:
            body = "".join(self.rng.choice(_ORG_CODE_ALPHABET) for _ in range(8))
            org = body + _org_code_check(body)
            first17 = prefix2 + self.area() + org
            code = first17 + uscc_check_char(first17)
            if code not in self.codes:
                self.codes.add(code)
                return code

    def citizen_id(self) -> str:
        while True:
            born = self.day_between(date(1955, 1, 1), date(2002, 12, 31))
            first17 = f"{self.area()}{born:%Y%m%d}{self.rng.randint(1, 999):03d}"
            if first17[:6] == "511700":  # a city code is not a county of residence
                first17 = "511702" + first17[6:]
            code = first17 + citizen_id_check_char(first17)
            if code not in self.codes:
                self.codes.add(code)
                return code

    def person_name(self) -> str:
        r = self.rng
        given = r.choice(_GIVEN) + (r.choice(_GIVEN) if r.random() < 0.7 else "")
        return r.choice(_SURNAMES) + given

    def company_name(self, industry: str | None = None) -> str:
        r = self.rng
        place = r.choice(["达州市", "达州", AREAS[self.area()]])
        return f"{place}{r.choice(_TRADE)}{industry or r.choice(_INDUSTRY)}有限公司"

    def subject(self, kind: str, industry: str | None = None) -> dict:
        r = self.rng
        if kind == "natural_person":
            return {"code": self.citizen_id(), "kind": kind, "name": self.person_name()}
        if kind == "individual_business":
            owner = self.person_name()
            name = f"{AREAS[self.area()]}{owner}{r.choice(_SHOP)}"
            return {"code": self.uscc("92"), "kind": kind, "name": name}
        if kind == "other_org":
            prefix = r.choice(["52", "52", "12", "51"])
            pattern = r.choice(_ORG_NAMES)
            name = pattern.format(place=AREAS[self.area()], trade=r.choice(_TRADE))
            return {"code": self.uscc(prefix), "kind": kind, "name": name}
        return {"code": self.uscc("91"), "kind": "legal_person", "name": self.company_name(industry)}

    # -- quiet records: none of them should trigger a measure on AS_OF ------------------
    def old_penalty(self, rid: str, serious: bool) -> dict:
        if serious:  # publication maximum P3Y: decided well over three years ago
            day = self.day_between(date(2015, 3, 1), date(2022, 3, 31))
        else:  # general: maximum P1Y
            day = self.day_between(date(2017, 1, 1), date(2024, 4, 30))
        dept, old, until = self.rng.choice(_PENALTY_DEPTS)
        if old and day < until:
            dept = old
        return {"id": rid, "kind": "penalty", "severity": "serious" if serious else "general",
                "status": "active", "decided_on": day.isoformat(), "department": dept,
                "document": self.document(_PENALTY_DOC[dept], day)}

    def quiet_ratings(self, ids: Iterator[str], room: int) -> list[dict]:
        """1-3 (at most `room`) consecutive annual tax credit ratings, all B or M, the latest
        in 2024 or 2025."""
        r = self.rng
        last = 2025 if r.random() < 0.7 else 2024
        count = min(r.choice((1, 1, 2, 3)), room)
        out = []
        for year in range(last - count + 1, last + 1):
            day = date(year, 4, r.randint(10, 28))
            out.append({"id": next(ids), "kind": "rating", "scheme": "tax.credit",
                        "grade": r.choice("BBBM"), "status": "active", "decided_on": day.isoformat(),
                        "department": "tax" if day >= date(2018, 7, 20) else "state_tax"})
        return out

    def old_list_entry(self, rid: str, kind: str) -> dict:
        """A list entry whose status ended long ago (expired, repaired or revoked)."""
        r = self.rng
        if kind == "natural_person":
            lst = "court.judgment_defaulter"
        elif r.random() < 0.45:
            lst = "market.abnormal_operation"
        else:
            lst = r.choices(BLACK_CODES, BLACK_WEIGHTS)[0]
        listed = self.day_between(date(2016, 1, 1), date(2021, 6, 30))
        status = r.choices(("expired", "repaired", "revoked"), (50, 40, 10))[0]
        term = _TERM_YEARS[lst]
        record = {"id": rid, "kind": "list_entry", "list": lst, "status": status,
                  "listed_on": listed.isoformat()}
        if status == "expired":
            end = _add_years(listed, term)
            record["expires_on"] = end.isoformat()
            record["status_on"] = end.isoformat()
        else:
            end = min(listed + timedelta(days=r.randint(120, 700)), date(2023, 6, 30))
            record["status_on"] = end.isoformat()
        dept = "market" if lst == "market.abnormal_operation" else BLACK_LISTS[lst][1]
        if dept == "market" and listed < date(2019, 1, 15):
            dept = "aic"
        if dept == "emergency" and listed < date(2019, 1, 15):
            dept = "safety"
        if dept == "ecology" and listed < date(2019, 1, 15):
            dept = "environment"
        record["department"] = dept
        pattern = BLACK_LISTS[lst][2] if lst in BLACK_LISTS else "达市监异〔{y}〕{n}号"
        record["document"] = self.document(pattern, listed)
        return record

    def quiet_records(self, kind: str, ids: Iterator[str], count: int, ratings: bool = True) -> list[dict]:
        """`count` quiet records; no ratings when the subject already has its own (a second
        rating on the same day would make "the latest grade" ambiguous)."""
        r = self.rng
        records: list[dict] = []
        rated = not ratings
        while len(records) < count:
            roll = r.random()
            if kind in ("legal_person", "individual_business") and not rated and roll < 0.35:
                rated = True
                records.extend(self.quiet_ratings(ids, count - len(records)))
            elif roll < 0.65:
                records.append(self.old_penalty(next(ids), serious=False))
            elif roll < 0.78:
                records.append(self.old_penalty(next(ids), serious=True))
            else:
                records.append(self.old_list_entry(next(ids), kind))
        return records

    # -- triggering records --------------------------------------------------------------
    def black_entry(self, rid: str, lst: str) -> dict:
        r = self.rng
        _, dept, pattern, _, _ = BLACK_LISTS[lst]
        listed = self.day_between(AS_OF - timedelta(days=364), AS_OF - timedelta(days=1))
        record = {"id": rid, "kind": "list_entry", "list": lst,
                  "status": "disputed" if r.random() < 0.05 else "active",
                  "listed_on": listed.isoformat(), "department": dept,
                  "document": self.document(pattern, listed)}
        if lst == "court.judgment_defaulter" and r.random() < 0.5:
            record["expires_on"] = _add_years(listed, 2).isoformat()
        elif lst in ("safety.dishonest", "construction.blacklist") and r.random() < 0.3:
            record["expires_on"] = _add_years(listed, 1).isoformat()
        return record

    def red_records(self, ids: Iterator[str]) -> list[dict]:
        r = self.rng
        out: list[dict] = []
        while not out:
            if r.random() < 0.7:
                if r.random() < 0.5:  # history: an older B or A
                    day = date(2024, 4, r.randint(10, 28))
                    out.append({"id": next(ids), "kind": "rating", "scheme": "tax.credit",
                                "grade": r.choice("AB"), "status": "active",
                                "decided_on": day.isoformat(), "department": "tax"})
                day = date(2025, 4, r.randint(10, 28))
                out.append({"id": next(ids), "kind": "rating", "scheme": "tax.credit", "grade": "A",
                            "status": "active", "decided_on": day.isoformat(), "department": "tax"})
            if r.random() < 0.25:
                listed = self.day_between(date(2022, 9, 1), date(2025, 5, 31))
                out.append({"id": next(ids), "kind": "list_entry", "list": "customs.advanced_certified",
                            "status": "active", "listed_on": listed.isoformat(),
                            "expires_on": _add_years(listed, 3).isoformat(), "department": "customs",
                            "document": self.document("达关认证〔{y}〕{n}号", listed)})
            if r.random() < 0.35:
                listed = self.day_between(date(2023, 9, 1), date(2025, 5, 31))
                out.append({"id": next(ids), "kind": "list_entry", "list": "market.contract_abiding",
                            "status": "active", "listed_on": listed.isoformat(), "department": "market",
                            "document": self.document("达市监信〔{y}〕{n}号", listed)})
        return out

    def relations(self, ids: Iterator[str], records: list[dict], related: list[dict],
                  p_financial: float) -> None:
        r = self.rng
        types = ["legal_representative"]
        if r.random() < p_financial:
            types.append("financial_officer")
        for rel_type in types:
            person = self.subject("natural_person")
            since = self.day_between(date(2008, 1, 1), date(2024, 12, 31))
            records.append({"id": next(ids), "kind": "relation", "type": rel_type,
                            "other": person["code"], "listed_on": since.isoformat(),
                            "status": "active"})
            person_bundle: dict = {"subject": person}
            if r.random() < 0.2:  # the person's own quiet history
                person_bundle["records"] = [self.old_penalty(f"{person['code'][-6:]}-P1", serious=False)]
            related.append(person_bundle)

    # -- one subject ---------------------------------------------------------------------
    def bundle(self, index: int) -> dict:
        r = self.rng
        serial = iter(f"R{index:07d}-{k:02d}" for k in range(1, 100))
        roll = r.random()
        records: list[dict] = []
        related: list[dict] = []
        if roll < SHARE_BLACK:
            lst = r.choices(BLACK_CODES, BLACK_WEIGHTS)[0]
            kinds = BLACK_LISTS[lst][3]
            kind = r.choices(list(kinds), list(kinds.values()))[0]
            subject = self.subject(kind, r.choice(BLACK_LISTS[lst][4]))
            records.append(self.black_entry(next(serial), lst))
            records.extend(self.quiet_records(kind, serial, r.randint(0, 3)) if r.random() < 0.7 else [])
            if kind == "legal_person" and r.random() < 0.25:
                self.relations(serial, records, related, 0.5 if lst == "tax.major_violation" else 0.1)
        elif roll < SHARE_BLACK + SHARE_RED:
            subject = self.subject("legal_person")
            records.extend(self.red_records(serial))
            if r.random() < RED_ALSO_BLACK:
                lst = r.choice(["tax.major_violation", "procurement.serious_violation",
                                "environment.serious_violation", "court.judgment_defaulter"])
                records.append(self.black_entry(next(serial), lst))
            if r.random() < 0.6:
                records.extend(self.quiet_records("legal_person", serial, r.randint(1, 2), ratings=False))
            if r.random() < 0.2:
                self.relations(serial, records, related, 0.1)
        else:
            kind = r.choices(("legal_person", "natural_person", "individual_business", "other_org"),
                             (78, 12, 8, 2))[0]
            subject = self.subject(kind)
            count = r.randint(1, 5)
            if kind == "legal_person" and r.random() < 0.04:
                self.relations(serial, records, related, 0.15)
                count = max(1, count - len(records))
            records.extend(self.quiet_records(kind, serial, count))
        bundle = {"subject": subject, "records": records}
        if related:
            bundle["related"] = related
        return bundle


def generate(n: int, seed: int = DEFAULT_SEED) -> Iterator[dict]:
    """Yield `n` bundle dicts, deterministically for a given seed."""
    population = _Population(seed)
    for index in range(n):
        yield population.bundle(index)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.population", description=__doc__.split("\n\n")[0])
    parser.add_argument("n", type=int, help="number of subjects")
    parser.add_argument("out", help="output JSONL file ('-' for stdout)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    args = parser.parse_args(argv)
    out = sys.stdout if args.out == "-" else open(args.out, "w", encoding="utf-8")
    try:
        for bundle in generate(args.n, seed=args.seed):
            out.write(json.dumps(bundle, ensure_ascii=False, separators=(",", ":")))
            out.write("\n")
    except BrokenPipeError:  # `| head`: the reader has had enough
        sys.stderr.close()
        return 0
    finally:
        if out is not sys.stdout:
            out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
