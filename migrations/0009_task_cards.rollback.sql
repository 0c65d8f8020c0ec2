DROP FUNCTION IF EXISTS capability_valid_until(capability_profiles);
DROP VIEW IF EXISTS task_cards;
