//! Distribution campaigns (物资发放, issue 7) (owner: campaigns): campaign modes (first come first
//! served, lottery), pickup and delivery, slots, pickup codes. SCAFFOLD.
