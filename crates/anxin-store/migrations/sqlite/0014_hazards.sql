-- Hazard inspection and the hazard ledger (issue 6), the shared part: checklist templates and
-- their items, inspection schedules, inspections and their answers, attachments (photos and
-- other evidence), hazards and their event trail. The working-day calendar and the risk register
-- (0015) and the supervision rounds (0016) add their own tables.
--
-- Records (logged through Tx): inspection_templates, inspection_items, inspection_schedules,
-- inspections, hazards. Operational (append-only detail of a record): inspection_answers,
-- hazard_events, attachments (blobs, never in the change log).

-- A checklist. Templates the platform ships have node_id NULL and a code (gas_household,
-- fire_exit, elevator, drain, shelter); a node's own templates have its node_id.
CREATE TABLE inspection_templates (
    id TEXT PRIMARY KEY,
    node_id TEXT REFERENCES nodes (id),
    code TEXT,
    name TEXT NOT NULL,
    -- What it inspects: dwelling, building, facility, node (anxin_domain::hazard::PlaceKind).
    target_kind TEXT NOT NULL CHECK (target_kind IN ('dwelling', 'building', 'facility', 'node')),
    -- For facility templates, the facility kind it applies to (shelter, …), else NULL.
    facility_kind TEXT,
    description TEXT NOT NULL DEFAULT '',
    status TEXT NOT NULL CHECK (status IN ('active', 'retired')),
    created_by TEXT REFERENCES users (id),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE UNIQUE INDEX inspection_templates_code ON inspection_templates (code) WHERE code IS NOT NULL;

CREATE TABLE inspection_items (
    id TEXT PRIMARY KEY,
    template_id TEXT NOT NULL REFERENCES inspection_templates (id),
    position BIGINT NOT NULL,
    -- Stable key within the template (pipe_corrosion, joint_sealing, …).
    code TEXT NOT NULL,
    text TEXT NOT NULL,
    -- What to look for, shown under the item.
    guidance TEXT NOT NULL DEFAULT '',
    answer_type TEXT NOT NULL CHECK (answer_type IN ('pass_fail', 'number', 'choice', 'text')),
    -- choice: {"options": [..], "failing": [..]}; number: {"min": x, "max": y, "unit": ".."}.
    answer_spec TEXT NOT NULL DEFAULT '{}',
    photo TEXT NOT NULL CHECK (photo IN ('none', 'optional', 'on_fail', 'required')),
    -- The grade a failed answer proposes for its hazard (the worker may raise it).
    fail_grade TEXT NOT NULL CHECK (fail_grade IN ('minor', 'major')),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (template_id, code)
);

-- Every target of `target_kind` within node_id's subtree (or the one target_id) is to be
-- inspected once per period. assignee_user_id NULL: the grid worker of the target's grid.
CREATE TABLE inspection_schedules (
    id TEXT PRIMARY KEY,
    node_id TEXT NOT NULL REFERENCES nodes (id),
    template_id TEXT NOT NULL REFERENCES inspection_templates (id),
    name TEXT NOT NULL,
    target_kind TEXT NOT NULL CHECK (target_kind IN ('dwelling', 'building', 'facility', 'node')),
    target_id TEXT,
    period TEXT NOT NULL CHECK (period IN ('daily', 'weekly', 'monthly', 'quarterly')),
    assignee_user_id TEXT REFERENCES users (id),
    starts_on TEXT NOT NULL,
    active INTEGER NOT NULL DEFAULT TRUE,
    created_by TEXT REFERENCES users (id),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX inspection_schedules_node ON inspection_schedules (node_id, active);

-- One inspection of one place against one template. node_id is the community (for the place's
-- compound see the place); period_key is the schedule's period it counts for ('2026-W49').
CREATE TABLE inspections (
    id TEXT PRIMARY KEY,
    node_id TEXT NOT NULL REFERENCES nodes (id),
    grid_id TEXT REFERENCES grids (id),
    template_id TEXT NOT NULL REFERENCES inspection_templates (id),
    schedule_id TEXT REFERENCES inspection_schedules (id),
    period_key TEXT,
    target_kind TEXT NOT NULL CHECK (target_kind IN ('dwelling', 'building', 'facility', 'node')),
    target_id TEXT NOT NULL,
    -- The place as a worker reads it (楼栋 3-2-401), no personal data.
    place_label TEXT NOT NULL,
    lon REAL,
    lat REAL,
    inspector_user_id TEXT REFERENCES users (id),
    status TEXT NOT NULL CHECK (status IN ('in_progress', 'done')),
    failed_count BIGINT NOT NULL DEFAULT 0,
    notes TEXT NOT NULL DEFAULT '',
    started_at TEXT NOT NULL,
    done_at TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX inspections_node ON inspections (node_id, done_at);
CREATE INDEX inspections_schedule ON inspections (schedule_id, period_key, target_id);
CREATE INDEX inspections_target ON inspections (target_kind, target_id, done_at);

-- The answers, with the item's text copied so a template's later edits do not rewrite history.
CREATE TABLE inspection_answers (
    id TEXT PRIMARY KEY,
    inspection_id TEXT NOT NULL REFERENCES inspections (id),
    item_id TEXT NOT NULL REFERENCES inspection_items (id),
    position BIGINT NOT NULL,
    item_text TEXT NOT NULL,
    answer TEXT NOT NULL,
    passed INTEGER,
    note TEXT NOT NULL DEFAULT '',
    hazard_id TEXT,
    -- The grade the worker chose for a failed answer (the item's fail_grade, or raised to major).
    grade TEXT CHECK (grade IN ('minor', 'major')),
    created_at TEXT NOT NULL,
    UNIQUE (inspection_id, item_id)
);

-- Photos and other evidence. owner_kind: inspection, answer, hazard, hazard_event (and later
-- capabilities' own kinds); the bytes live here so both stores back them up alike.
CREATE TABLE attachments (
    id TEXT PRIMARY KEY,
    node_id TEXT NOT NULL REFERENCES nodes (id),
    owner_kind TEXT NOT NULL,
    owner_id TEXT NOT NULL,
    filename TEXT NOT NULL,
    mime TEXT NOT NULL,
    size BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    data BLOB NOT NULL,
    created_by TEXT REFERENCES users (id),
    created_at TEXT NOT NULL
);
CREATE INDEX attachments_owner ON attachments (owner_kind, owner_id);

-- The hazard ledger (隐患台账). node_id: the community; deadlines are computed from the grade's
-- rule when found (fix_due_at, plan_due_at) and kept, so a later change of rules does not move
-- a running deadline. incident_id links the plan's start (a real activation, not a checkbox).
CREATE TABLE hazards (
    id TEXT PRIMARY KEY,
    node_id TEXT NOT NULL REFERENCES nodes (id),
    grid_id TEXT REFERENCES grids (id),
    place_kind TEXT NOT NULL CHECK (place_kind IN ('dwelling', 'building', 'facility', 'node')),
    place_id TEXT NOT NULL,
    place_label TEXT NOT NULL,
    lon REAL,
    lat REAL,
    source TEXT NOT NULL CHECK (source IN ('inspection', 'staff', 'resident')),
    inspection_id TEXT REFERENCES inspections (id),
    answer_id TEXT,
    category TEXT NOT NULL DEFAULT '',
    finding TEXT NOT NULL,
    grade TEXT NOT NULL CHECK (grade IN ('minor', 'major')),
    state TEXT NOT NULL CHECK (state IN ('reported', 'assigned', 'remediating', 'fixed', 'accepted', 'closed')),
    responsible_party TEXT NOT NULL DEFAULT '',
    assignee_user_id TEXT REFERENCES users (id),
    found_at TEXT NOT NULL,
    plan_due_at TEXT,
    fix_due_at TEXT NOT NULL,
    incident_id TEXT REFERENCES incidents (id),
    plan_started_at TEXT,
    fixed_at TEXT,
    accepted_by TEXT REFERENCES users (id),
    accepted_at TEXT,
    closed_at TEXT,
    -- Set when closed: fixed_at <= fix_due_at (and, for major, plan started by plan_due_at).
    closed_on_time INTEGER,
    -- Escalation for overdue: how many levels up it has gone, and when last.
    escalation_level BIGINT NOT NULL DEFAULT 0,
    escalated_at TEXT,
    reopened_count BIGINT NOT NULL DEFAULT 0,
    created_by TEXT REFERENCES users (id),
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX hazards_node ON hazards (node_id, state);
CREATE INDEX hazards_found ON hazards (node_id, found_at);
CREATE INDEX hazards_due ON hazards (state, fix_due_at);
CREATE INDEX hazards_grid ON hazards (grid_id);

-- Every change of a hazard: who, when, from which state to which, and the evidence
-- (attachment ids as a JSON array). seq orders one hazard's events.
CREATE TABLE hazard_events (
    id TEXT PRIMARY KEY,
    hazard_id TEXT NOT NULL REFERENCES hazards (id),
    seq BIGINT NOT NULL,
    at TEXT NOT NULL,
    actor TEXT REFERENCES users (id),
    -- reported, assigned, remediating, fixed, accepted, closed, reopened, plan_started,
    -- escalated, note.
    kind TEXT NOT NULL,
    from_state TEXT,
    to_state TEXT,
    note TEXT NOT NULL DEFAULT '',
    evidence TEXT NOT NULL DEFAULT '[]',
    UNIQUE (hazard_id, seq)
);

-- The checklists the platform ships (owner: inspections): fixed ids, node_id NULL, a code;
-- read-only to every node. Items follow the standards named in each description.

INSERT INTO inspection_templates (id, node_id, code, name, target_kind, facility_kind, description, status, created_by, created_at, updated_at) VALUES
    ('01940000-0014-7000-8000-000000000001', NULL, 'gas_household', '燃气安全入户检查', 'dwelling', NULL, '居民户内燃气设施安全检查（依据 GB 50028《城镇燃气设计规范》、CJJ 51《城镇燃气设施运行、维护和抢修安全技术规程》户内巡检要求及《城镇燃气管理条例》）。严禁明火检漏；发现漏气立即关闭表前阀、开窗通风、不开关电器，并通知燃气企业抢修。', 'active', NULL, '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z');
INSERT INTO inspection_items (id, template_id, position, code, text, guidance, answer_type, answer_spec, photo, fail_grade, created_at, updated_at) VALUES
    ('01940000-0014-7000-8001-000000000001', '01940000-0014-7000-8000-000000000001', 1, 'pipe_corrosion', '燃气管道无锈蚀、腐蚀', '检查户内立管、水平管和表前管道：防腐层完好，无明显锈蚀、起皮、腐蚀坑或穿孔；管道固定牢靠，不作为电器接地线，不悬挂重物。', 'pass_fail', '{}', 'on_fail', 'minor', '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z'),
    ('01940000-0014-7000-8001-000000000002', '01940000-0014-7000-8000-000000000001', 2, 'joint_sealing', '管道接口、阀门密封良好（肥皂水检漏无气泡）', '用肥皂水涂抹管道接口、阀门、燃气表进出口和胶管两端接头，观察约1分钟无气泡；或用便携式燃气检测仪检测无报警。严禁用明火检漏。发现漏气即关表前阀、开窗通风。', 'pass_fail', '{}', 'on_fail', 'major', '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z'),
    ('01940000-0014-7000-8001-000000000003', '01940000-0014-7000-8000-000000000001', 3, 'hose_age', '连接胶管无老化龟裂，未超期使用（橡胶软管不超过18个月）', '弯折胶管查看有无龟裂、变硬、发粘、鼓包；查看管身生产日期，普通橡胶软管使用超过18个月应更换，建议更换为螺纹连接的不锈钢波纹管。', 'choice', '{"options": ["不锈钢波纹管", "橡胶软管（18个月内）", "橡胶软管（超过18个月或无日期）", "胶管老化龟裂"], "failing": ["橡胶软管（超过18个月或无日期）", "胶管老化龟裂"]}', 'on_fail', 'minor', '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z'),
    ('01940000-0014-7000-8001-000000000004', '01940000-0014-7000-8000-000000000001', 4, 'hose_clamps', '胶管两端用管卡紧固', '胶管与灶前阀、灶具进气口两端均应套入到位（越过红线或卡槽）并用专用管卡（喉箍）紧固，手拉不脱落。', 'pass_fail', '{}', 'on_fail', 'minor', '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z'),
    ('01940000-0014-7000-8001-000000000005', '01940000-0014-7000-8000-000000000001', 5, 'hose_length', '胶管长度不超过2米，且不穿墙、门窗，不暗设', '连接胶管长度不大于2米、中间无接头；不得穿越墙体、门窗、顶棚和地面，不得被橱柜封闭，应便于检查。', 'pass_fail', '{}', 'on_fail', 'minor', '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z'),
    ('01940000-0014-7000-8001-000000000006', '01940000-0014-7000-8000-000000000001', 6, 'valves', '表前阀、灶前阀启闭灵活、关闭严密', '转动表前阀和灶前阀，启闭灵活不卡滞，关闭后无内漏；手柄完好；确认住户知道阀门位置及关闭方法。', 'pass_fail', '{}', 'on_fail', 'minor', '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z'),
    ('01940000-0014-7000-8001-000000000007', '01940000-0014-7000-8000-000000000001', 7, 'meter', '燃气表外观完好、计数正常', '表体无锈蚀、变形、破损，铅封完好；关闭全部燃气用具时计数器不走字，使用时正常计数；表具在使用年限内，周围无热源和杂物。', 'pass_fail', '{}', 'optional', 'minor', '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z'),
    ('01940000-0014-7000-8001-000000000008', '01940000-0014-7000-8000-000000000001', 8, 'leak_alarm', '安装燃气泄漏报警器并有效', '厨房应安装家用可燃气体探测器（天然气报警器装在距顶棚0.3米以内），按测试键应声光报警，联动切断阀动作正常，并在有效期（一般5年）内。', 'choice', '{"options": ["已安装且测试正常", "已安装但测试无响应或已过期", "未安装"], "failing": ["已安装但测试无响应或已过期", "未安装"]}', 'on_fail', 'minor', '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z'),
    ('01940000-0014-7000-8001-000000000009', '01940000-0014-7000-8000-000000000001', 9, 'ventilation', '厨房通风良好，用气房间未封闭、不作卧室', '安装燃气用具的房间应有可开启的外窗或排风设施；厨房不得改作卧室或与卧室连通封闭使用；封闭阳台内的燃气设施应保证通风。', 'pass_fail', '{}', 'on_fail', 'minor', '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z'),
    ('01940000-0014-7000-8001-000000000010', '01940000-0014-7000-8000-000000000001', 10, 'heater_flue', '燃气热水器为强排式或平衡式，烟道完好且伸出室外', '严禁使用直排式燃气热水器，热水器不得装在浴室内；烟道接口严密、无脱落破损，烟道伸出外墙，不得排入公共烟道、楼道或室内。', 'choice', '{"options": ["无燃气热水器", "强排式或平衡式，烟道完好伸出室外", "烟道脱落、破损或未伸出室外", "直排式或安装在浴室内"], "failing": ["烟道脱落、破损或未伸出室外", "直排式或安装在浴室内"]}', 'on_fail', 'major', '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z'),
    ('01940000-0014-7000-8001-000000000011', '01940000-0014-7000-8000-000000000001', 11, 'flameout_protection', '灶具有熄火保护装置且有效', '点火后关闭或吹灭火焰，灶具应自动切断燃气（GB 16410 要求家用燃气灶具每个燃烧器有熄火保护）；无熄火保护的老旧灶具应更换。', 'pass_fail', '{}', 'on_fail', 'minor', '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z'),
    ('01940000-0014-7000-8001-000000000012', '01940000-0014-7000-8000-000000000001', 12, 'no_tampering', '无私拉乱接、私改燃气设施，管道无包封暗埋', '不得私自改装、拆除、迁移燃气管道和表具；管道、阀门、燃气表不得被橱柜、吊顶等封闭包覆或暗埋（确需包封的应有检修口和通风）；管道上不得搭挂物品。', 'pass_fail', '{}', 'on_fail', 'major', '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z');

INSERT INTO inspection_templates (id, node_id, code, name, target_kind, facility_kind, description, status, created_by, created_at, updated_at) VALUES
    ('01940000-0014-7000-8000-000000000002', NULL, 'fire_exit', '消防通道与安全出口检查', 'building', NULL, '楼栋疏散通道、安全出口和消防车通道检查（依据《中华人民共和国消防法》第二十八条、GB 50016《建筑设计防火规范》、GB 51309《消防应急照明和疏散指示系统技术标准》）。', 'active', NULL, '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z');
INSERT INTO inspection_items (id, template_id, position, code, text, guidance, answer_type, answer_spec, photo, fail_grade, created_at, updated_at) VALUES
    ('01940000-0014-7000-8002-000000000001', '01940000-0014-7000-8000-000000000002', 1, 'corridor_clear', '疏散通道、楼梯间无杂物堆放，保持畅通', '逐层查看楼道、楼梯间、前室：无堆放杂物、家具、易燃物，疏散宽度未被占用。', 'pass_fail', '{}', 'on_fail', 'minor', '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z'),
    ('01940000-0014-7000-8002-000000000002', '01940000-0014-7000-8000-000000000002', 2, 'exit_doors', '安全出口未锁闭、未堵塞，防火门常闭且闭门器完好', '安全出口和屋顶通道门不得上锁或被封堵；常闭式防火门应处于关闭状态，闭门器、顺序器完好，门扇无变形破损。', 'pass_fail', '{}', 'on_fail', 'major', '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z'),
    ('01940000-0014-7000-8002-000000000003', '01940000-0014-7000-8000-000000000002', 3, 'ebike', '楼道、楼梯间内无电动自行车停放或充电', '楼道、楼梯间、安全出口处不得停放电动自行车或为其充电，无“飞线”充电。', 'pass_fail', '{}', 'on_fail', 'major', '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z'),
    ('01940000-0014-7000-8002-000000000004', '01940000-0014-7000-8000-000000000002', 4, 'emergency_lighting', '应急照明和疏散指示标志完好有效', '按下测试按钮或断开主电源，应急照明灯应点亮；疏散指示标志方向正确、清晰、常亮。', 'pass_fail', '{}', 'on_fail', 'minor', '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z'),
    ('01940000-0014-7000-8002-000000000005', '01940000-0014-7000-8000-000000000002', 5, 'extinguishers', '灭火器在有效期内、压力正常', '每处配置的灭火器数量齐全，压力表指针在绿区，瓶体无锈蚀，在维修期限内；拍摄一具灭火器的压力表。', 'pass_fail', '{}', 'required', 'minor', '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z'),
    ('01940000-0014-7000-8002-000000000006', '01940000-0014-7000-8000-000000000002', 6, 'hydrant_box', '室内消火栓箱内水带、水枪齐全，箱前无遮挡', '打开消火栓箱：水带、水枪、接口齐全，阀门无锈死、无漏水；箱门开启不受阻挡。', 'pass_fail', '{}', 'on_fail', 'minor', '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z'),
    ('01940000-0014-7000-8002-000000000007', '01940000-0014-7000-8000-000000000002', 7, 'fire_lane', '消防车通道畅通，无占用、堵塞', '楼前消防车通道和登高操作场地无停车、地桩、围栏等占用，标识清晰。', 'pass_fail', '{}', 'on_fail', 'major', '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z'),
    ('01940000-0014-7000-8002-000000000008', '01940000-0014-7000-8000-000000000002', 8, 'remarks', '其他发现', '记录未列出的其他问题；无则填“无”。', 'text', '{}', 'none', 'minor', '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z');

INSERT INTO inspection_templates (id, node_id, code, name, target_kind, facility_kind, description, status, created_by, created_at, updated_at) VALUES
    ('01940000-0014-7000-8000-000000000003', NULL, 'elevator', '电梯安全检查', 'building', NULL, '住宅电梯日常安全检查（依据《中华人民共和国特种设备安全法》、TSG T5002《电梯维护保养规则》、TSG T7001《电梯监督检验和定期检验规则》）。', 'active', NULL, '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z');
INSERT INTO inspection_items (id, template_id, position, code, text, guidance, answer_type, answer_spec, photo, fail_grade, created_at, updated_at) VALUES
    ('01940000-0014-7000-8003-000000000001', '01940000-0014-7000-8000-000000000003', 1, 'use_certificate', '电梯使用标志在有效期内并张贴于轿厢内', '轿厢内应张贴特种设备使用标志，下次检验日期未过期；拍摄使用标志。', 'pass_fail', '{}', 'required', 'minor', '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z'),
    ('01940000-0014-7000-8003-000000000002', '01940000-0014-7000-8000-000000000003', 2, 'maintenance_record', '维保记录完整，15日内有维护保养', '查看轿厢或物业处的维保记录：按规定每15日至少维护保养一次，有维保人员签字。', 'pass_fail', '{}', 'on_fail', 'minor', '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z'),
    ('01940000-0014-7000-8003-000000000003', '01940000-0014-7000-8000-000000000003', 3, 'alarm_intercom', '轿厢紧急报警装置有效（五方通话接通）', '按下轿厢内紧急报警按钮，应能与值班室或维保单位接通通话。', 'pass_fail', '{}', 'on_fail', 'major', '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z'),
    ('01940000-0014-7000-8003-000000000004', '01940000-0014-7000-8000-000000000003', 4, 'door_protection', '层门、轿门开关正常，防夹保护有效', '遮挡光幕或触碰安全触板时，正在关闭的门应重新开启；层门在轿厢不在本层时不能从外部扒开。', 'pass_fail', '{}', 'on_fail', 'major', '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z'),
    ('01940000-0014-7000-8003-000000000005', '01940000-0014-7000-8000-000000000003', 5, 'leveling', '平层准确，运行无异常抖动、异响', '乘梯上下运行各一次：停靠时轿厢地坎与层门地坎基本平齐，运行平稳无异响。', 'pass_fail', '{}', 'on_fail', 'minor', '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z'),
    ('01940000-0014-7000-8003-000000000006', '01940000-0014-7000-8000-000000000003', 6, 'machine_room', '机房、底坑无积水、无杂物，机房门锁闭', '机房门应锁闭并有警示标志；机房和底坑无积水、无杂物堆放。', 'pass_fail', '{}', 'optional', 'minor', '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z'),
    ('01940000-0014-7000-8003-000000000007', '01940000-0014-7000-8000-000000000003', 7, 'entrapments', '自上次检查以来困人次数', '向物业或维保单位了解并填写；大于0即记为隐患，需查明原因。', 'number', '{"min": 0, "max": 0, "unit": "次"}', 'none', 'minor', '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z');

INSERT INTO inspection_templates (id, node_id, code, name, target_kind, facility_kind, description, status, created_by, created_at, updated_at) VALUES
    ('01940000-0014-7000-8000-000000000004', NULL, 'drain', '排水设施与雨水井检查', 'node', NULL, '小区排水设施、雨水井和防汛准备检查（依据 GB 50014《室外排水设计标准》与城市排水设施养护要求），汛前和强降雨前后加密检查。', 'active', NULL, '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z');
INSERT INTO inspection_items (id, template_id, position, code, text, guidance, answer_type, answer_spec, photo, fail_grade, created_at, updated_at) VALUES
    ('01940000-0014-7000-8004-000000000001', '01940000-0014-7000-8000-000000000004', 1, 'covers', '雨水箅子、检查井盖齐全完好，无缺失、破损、移位', '逐个查看雨水口箅子和检查井盖：无缺失、破损、塌陷、移位或高差，防坠网完好。井盖缺失立即设置围挡警示。', 'pass_fail', '{}', 'on_fail', 'major', '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z'),
    ('01940000-0014-7000-8004-000000000002', '01940000-0014-7000-8000-000000000004', 2, 'inlets_clear', '雨水口、排水沟无淤积、垃圾堵塞', '雨水口和排水沟内无落叶、泥沙、垃圾堵塞，排水畅通。', 'pass_fail', '{}', 'on_fail', 'minor', '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z'),
    ('01940000-0014-7000-8004-000000000003', '01940000-0014-7000-8000-000000000004', 3, 'outfall', '排水出口通畅，无倒灌迹象', '小区排水出口与市政管网连接处通畅，无倒灌、溢流痕迹。', 'pass_fail', '{}', 'on_fail', 'minor', '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z'),
    ('01940000-0014-7000-8004-000000000004', '01940000-0014-7000-8000-000000000004', 4, 'pumps', '地下车库、低洼处排水泵试运行正常', '启动排水泵试运行，水泵运转和浮球控制正常，备用电源可用。', 'choice', '{"options": ["无排水泵", "试运行正常", "无法启动或故障"], "failing": ["无法启动或故障"]}', 'on_fail', 'major', '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z'),
    ('01940000-0014-7000-8004-000000000005', '01940000-0014-7000-8000-000000000004', 5, 'flood_supplies', '防汛沙袋、挡水板等物资到位', '地下车库入口、低洼楼栋处防汛沙袋、挡水板按预案数量储备，放置位置明确。', 'pass_fail', '{}', 'on_fail', 'minor', '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z'),
    ('01940000-0014-7000-8004-000000000006', '01940000-0014-7000-8000-000000000004', 6, 'ponding_depth', '低洼处积水深度', '测量检查时最低洼处积水深度（厘米），超过15厘米记为隐患。', 'number', '{"min": 0, "max": 15, "unit": "cm"}', 'optional', 'minor', '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z');

INSERT INTO inspection_templates (id, node_id, code, name, target_kind, facility_kind, description, status, created_by, created_at, updated_at) VALUES
    ('01940000-0014-7000-8000-000000000005', NULL, 'shelter', '应急避难场所检查', 'facility', 'shelter', '应急避难场所日常检查（依据 GB 21734《地震应急避难场所 场址及配套设施》、GB/T 35624《城镇应急避难场所通用技术要求》）。', 'active', NULL, '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z');
INSERT INTO inspection_items (id, template_id, position, code, text, guidance, answer_type, answer_spec, photo, fail_grade, created_at, updated_at) VALUES
    ('01940000-0014-7000-8005-000000000001', '01940000-0014-7000-8000-000000000005', 1, 'signage', '避难场所标志牌、疏散指示完好清晰', '入口标志牌、场所内功能区标识和周边疏散指引完好、清晰、位置醒目。', 'pass_fail', '{}', 'on_fail', 'minor', '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z'),
    ('01940000-0014-7000-8005-000000000002', '01940000-0014-7000-8000-000000000005', 2, 'access', '出入口和场内通道畅通，无占用', '出入口不少于两个且未被锁闭占用；场内通道无车辆、杂物占用。', 'pass_fail', '{}', 'on_fail', 'major', '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z'),
    ('01940000-0014-7000-8005-000000000003', '01940000-0014-7000-8000-000000000005', 3, 'power_lighting', '应急供电、照明可正常启用', '启动应急照明和备用电源（发电机或储能）试运行，正常供电。', 'pass_fail', '{}', 'on_fail', 'major', '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z'),
    ('01940000-0014-7000-8005-000000000004', '01940000-0014-7000-8000-000000000005', 4, 'water', '应急供水可用', '储水设施或取水点可正常取水，水质无明显异常。', 'pass_fail', '{}', 'on_fail', 'minor', '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z'),
    ('01940000-0014-7000-8005-000000000005', '01940000-0014-7000-8000-000000000005', 5, 'toilets', '应急厕所可用', '应急厕所（或可快速启用的厕位）完好可用。', 'pass_fail', '{}', 'on_fail', 'minor', '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z'),
    ('01940000-0014-7000-8005-000000000006', '01940000-0014-7000-8000-000000000005', 6, 'supplies', '应急物资储备与台账相符', '核对帐篷、棉被、饮用水、食品、药品等储备数量与台账一致，在保质期内；拍摄物资存放处。', 'pass_fail', '{}', 'required', 'minor', '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z'),
    ('01940000-0014-7000-8005-000000000007', '01940000-0014-7000-8000-000000000005', 7, 'fire_equipment', '消防器材配置齐全有效', '灭火器、消火栓等消防器材数量齐全、在有效期内。', 'pass_fail', '{}', 'on_fail', 'minor', '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z'),
    ('01940000-0014-7000-8005-000000000008', '01940000-0014-7000-8000-000000000005', 8, 'contact_notice', '管理责任人及联系电话公示', '入口处公示场所管理单位、责任人和24小时联系电话。', 'pass_fail', '{}', 'none', 'minor', '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z');

-- Their change-log entries (the after-image exactly as stored), so the log mirrors every
-- record from the start; positions continue the counter.
INSERT INTO change_log (pos, id, origin, seq, kind, record_id, op, after, after_ct, key_id, actor, request_id, at)
SELECT c.last + r.n, r.entry_id, 'local', c.last + r.n, 'inspection_templates', r.rid, 'insert', r.image, NULL, NULL, NULL, 'migration-0014', r.created_at
FROM log_counter c, (SELECT replace(id, '-0014-7000-', '-0014-7001-') AS entry_id, id AS rid, created_at, json_object('id', id, 'node_id', node_id, 'code', code, 'name', name, 'target_kind', target_kind,
        'facility_kind', facility_kind, 'description', description, 'status', status, 'created_by', created_by,
        'created_at', created_at, 'updated_at', updated_at) AS image,
        row_number() OVER (ORDER BY id) AS n
    FROM inspection_templates WHERE id IN (SELECT id FROM inspection_templates WHERE node_id IS NULL)) r
WHERE c.id = 1;
UPDATE log_counter SET last = last + (SELECT count(*) FROM inspection_templates WHERE node_id IS NULL) WHERE id = 1;
INSERT INTO change_log (pos, id, origin, seq, kind, record_id, op, after, after_ct, key_id, actor, request_id, at)
SELECT c.last + r.n, r.entry_id, 'local', c.last + r.n, 'inspection_items', r.rid, 'insert', r.image, NULL, NULL, NULL, 'migration-0014', r.created_at
FROM log_counter c, (SELECT replace(id, '-0014-7000-', '-0014-7001-') AS entry_id, id AS rid, created_at, json_object('id', id, 'template_id', template_id, 'position', position, 'code', code, 'text', text,
        'guidance', guidance, 'answer_type', answer_type, 'answer_spec', answer_spec, 'photo', photo,
        'fail_grade', fail_grade, 'created_at', created_at, 'updated_at', updated_at) AS image,
        row_number() OVER (ORDER BY template_id, position) AS n
    FROM inspection_items WHERE id IN (SELECT id FROM inspection_items WHERE template_id IN (SELECT id FROM inspection_templates WHERE node_id IS NULL))) r
WHERE c.id = 1;
UPDATE log_counter SET last = last + (SELECT count(*) FROM inspection_items WHERE template_id IN (SELECT id FROM inspection_templates WHERE node_id IS NULL)) WHERE id = 1;
