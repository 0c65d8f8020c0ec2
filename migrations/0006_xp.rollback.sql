DROP TABLE IF EXISTS xp_ledger;
DROP FUNCTION IF EXISTS xp_ledger_award();
DROP FUNCTION IF EXISTS xp_award(bigint, integer, bigint);
DROP FUNCTION IF EXISTS xp_decay(bigint);
DROP FUNCTION IF EXISTS xp_base(bigint);
DROP FUNCTION IF EXISTS xp_streak_multiplier(integer);
DROP FUNCTION IF EXISTS level_for_xp(bigint);
