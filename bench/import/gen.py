#!/usr/bin/env python3
"""Generate N people rows (seeded, deterministic) as an Anxin people-import CSV.

Every ID number is a valid GB 11643 number (region 510104, distinct birth date + sequence, correct
checksum), every phone a valid mainland mobile number, people grouped into households of 1-4 with
their relation to the head. Usage: gen.py N OUT.csv [SEED]
"""
import csv
import datetime
import random
import sys

W = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
CHECK = "10X98765432"
SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
GIVEN = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉兰萍鹏建华红梅飞鑫波斌宇浩凯健俊帆帅旭宁龙林欣悦晨阳雪婷琳"
POP = [("户籍", 60), ("寄住", 15), ("流动", 23), ("境外", 2)]
ROLES = ["配偶", "子女", "父母"]


def id_number(birth: datetime.date, seq: int) -> str:
    body = f"510104{birth:%Y%m%d}{seq:03d}"
    s = sum(int(c) * w for c, w in zip(body, W))
    return body + CHECK[s % 11]


def main() -> None:
    n = int(sys.argv[1])
    out = sys.argv[2]
    rng = random.Random(int(sys.argv[3]) if len(sys.argv) > 3 else 2026)
    pops = [p for p, w in POP for _ in range(w)]
    base = datetime.date(1940, 1, 1)
    days = 29000  # about 80 years of birth dates; i // days keeps (date, seq) distinct
    with open(out, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["姓名", "性别", "出生日期", "人口类型", "证件类型", "证件号码", "联系电话", "户号", "与户主关系", "网格"])
        i = 0
        hh = 0
        while i < n:
            hh += 1
            size = min(rng.choice([1, 1, 2, 2, 3, 3, 3, 4]), n - i)
            pop = rng.choice(pops)
            for k in range(size):
                birth = base + datetime.timedelta(days=(i * 7919) % days)
                seq = i // days
                name = rng.choice(SURNAMES) + rng.choice(GIVEN) + (rng.choice(GIVEN) if rng.random() < 0.7 else "")
                role = "户主" if k == 0 else ROLES[(k - 1) % len(ROLES)]
                phone = f"1{rng.choice('3589')}{i:09d}"
                w.writerow([name, "", "", pop, "居民身份证", id_number(birth, seq), phone, f"H{hh}", role, ""])
                i += 1


if __name__ == "__main__":
    main()
