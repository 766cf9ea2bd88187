#!/usr/bin/env python3
"""Bureau codes and names for large local testnets (testnet/up.sh N, testnet/scale.sh).

    testnet/codes.py N     prints N lines "CODE<TAB>NAME<TAB>PROVINCE", deterministic.

The first 8 are the real county-level divisions and bureaus of testnet/common.sh (so a testnet
of up to 8 bureaus is what it always was). The rest are plausible county-level division codes
(GB/T 2260 shape: PP CC DD, province PP = code / 10000 with the real province prefixes 11 Beijing
... 65 Xinjiang, city CC from 01, district/county DD from 01) a quarter of them in 广东省 (44, so one province holds about a quarter of
a large testnet) and the rest dealt round-robin over the other 30 provinces, named after the real province and capital-style pattern
"<省>第<城>市公安局第<县>分局" so a clerk can tell them apart. Nothing here is random: the same N
always gives the same list, and list N is a prefix of list N+1.

Province sizes: for N = 200, 广东省 holds 48 bureaus and each other province 4-6.
testnet/scale.sh stops "a province" as a quarter of the bureaus: whole provinces, the largest
first, until a quarter is reached (`--quarter N` prints those codes; for N >= 16 that is 广东省
alone, for N = 8 上海市's two real bureaus).
"""
import sys

# The first 8: testnet/common.sh (real codes and bureaus). Keep in the same order.
REAL = [
    ("310104", "上海市公安局徐汇分局"),
    ("330502", "湖州市公安局吴兴分局"),
    ("340100", "合肥市公安局"),
    ("340104", "合肥市公安局蜀山分局"),
    ("320506", "苏州市公安局吴中分局"),
    ("310115", "上海市公安局浦东分局"),
    ("330106", "杭州市公安局西湖分局"),
    ("320102", "南京市公安局玄武分局"),
]

# The 31 provincial-level divisions of the mainland, by their real code prefix.
PROVINCES = [
    (11, "北京市"), (12, "天津市"), (13, "河北省"), (14, "山西省"), (15, "内蒙古自治区"),
    (21, "辽宁省"), (22, "吉林省"), (23, "黑龙江省"), (31, "上海市"), (32, "江苏省"),
    (33, "浙江省"), (34, "安徽省"), (35, "福建省"), (36, "江西省"), (37, "山东省"),
    (41, "河南省"), (42, "湖北省"), (43, "湖南省"), (44, "广东省"), (45, "广西壮族自治区"),
    (46, "海南省"), (50, "重庆市"), (51, "四川省"), (52, "贵州省"), (53, "云南省"),
    (54, "西藏自治区"), (61, "陕西省"), (62, "甘肃省"), (63, "青海省"), (64, "宁夏回族自治区"),
    (65, "新疆维吾尔自治区"),
]
NAMES = dict(PROVINCES)
MUNICIPALITIES = {11, 12, 31, 50}
DIGITS = "零一二三四五六七八九"

# Synthetic codes use districts from 60 upwards, so they never collide with the real 8 (whose
# district digits are all below 20) and read as "a county of the province", not as a known one.
FIRST_SYNTHETIC_DISTRICT = 60
DISTRICTS_PER_CITY = 30  # 60..89
# The province that holds a quarter of the synthetic bureaus (广东省), so that "a whole province
# offline" in testnet/scale.sh is one province and a quarter of the network, as in issue 14.
BIG = 44


def chinese_number(n):
    """1..99 in Chinese numerals (十一, 二十三)."""
    if n < 10:
        return DIGITS[n]
    tens, ones = divmod(n, 10)
    return ("" if tens == 1 else DIGITS[tens]) + "十" + (DIGITS[ones] if ones else "")


def bureaus(n):
    """The first n (code, name, province) of the deterministic list."""
    out = [(code, name, int(code) // 10000) for code, name in REAL[:n]]
    made = {}  # province prefix -> synthetic bureaus made there so far
    others = [p for p in PROVINCES if p[0] != BIG]
    k = 0  # synthetic bureaus dealt to the other provinces so far
    while len(out) < n:
        if made.get(BIG, 0) < (len(out) + 1) // 4:
            prefix = BIG
        else:
            prefix = others[k % len(others)][0]
            k += 1
        j = made.get(prefix, 0)  # this province's j-th synthetic bureau
        made[prefix] = j + 1
        city, district = divmod(j, DISTRICTS_PER_CITY)
        city += 1
        if city > 99:
            raise SystemExit("codes.py: too many bureaus for one province")
        nth = district + 1
        code = f"{prefix:02d}{city:02d}{district + FIRST_SYNTHETIC_DISTRICT:02d}"
        province = NAMES[prefix]
        if prefix in MUNICIPALITIES:
            name = f"{province}公安局第{chinese_number(j + 1)}分局"
        else:
            name = f"{province}第{chinese_number(city)}市公安局第{chinese_number(nth)}分局"
        out.append((code, name, prefix))
    return out


def quarter(n):
    """Codes of whole provinces, the largest first (ties: lower prefix), until at least a
    quarter of the n bureaus: the "province down" set of testnet/scale.sh."""
    by_province = {}
    for code, _, p in bureaus(n):
        by_province.setdefault(p, []).append(code)
    order = sorted(by_province, key=lambda p: (-len(by_province[p]), p))
    chosen, target = [], n // 4
    for p in order:
        if len(chosen) >= target:
            break
        chosen += by_province[p]
    return chosen, [p for p in order if set(by_province[p]) <= set(chosen)]


def main(argv):
    if len(argv) == 3 and argv[1] == "--quarter":
        codes, provinces = quarter(int(argv[2]))
        print(" ".join(codes))
        print(" ".join(f"{p}:{NAMES[p]}" for p in provinces), file=sys.stderr)
        return
    if len(argv) != 2 or not argv[1].isdigit():
        raise SystemExit("usage: testnet/codes.py N | --quarter N")
    for code, name, p in bureaus(int(argv[1])):
        print(f"{code}\t{name}\t{p}")


if __name__ == "__main__":
    main(sys.argv)
