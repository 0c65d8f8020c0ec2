"""The columns the seed copies into each table, in the order its rows list them."""

# fmt: off
USERS = ("id", "email", "email_verified_at", "password_hash", "full_name", "phone",
         "phone_verified_at", "default_mode", "is_admin", "trust_tier", "location_state",
         "created_at", "updated_at")
VERIFICATIONS = ("id", "user_id", "kind", "trade", "state", "expires_at", "submitted_at",
                 "reviewed_at", "reviewed_by", "rejection_reason", "expired_at")
DOCUMENTS = ("verification_id", "position", "upload_id")
UPLOADS = ("id", "owner_id", "purpose", "content_type", "declared_size", "object_key", "state",
           "size_bytes", "sha256", "width", "height", "thumbnail_key", "created_at", "uploaded_at",
           "processed_at")
TASKS = ("id", "poster_id", "worker_id", "title", "description", "category", "price_cents",
         "currency", "address", "location_state", "location", "urgent", "deadline",
         "required_trade", "required_trust_tier", "insurance_required",
         "background_check_required", "requires_proof", "state", "cancel_reason", "funded_at",
         "created_at", "updated_at", "accepted_at", "proof_submitted_at", "disputed_at",
         "completed_at", "cancelled_at", "expired_at")
ESCROWS = ("id", "task_id", "amount_cents", "currency", "state", "payment_reference",
           "released_cents", "refunded_cents", "created_at", "updated_at", "funded_at",
           "locked_at", "settled_at")
PROOFS = ("id", "task_id", "worker_id", "note", "state", "rejection_reason", "created_at",
          "reviewed_at")
PHOTOS = ("proof_id", "position", "upload_id")
DISPUTES = ("id", "task_id", "opened_by", "reason", "state", "resolution", "split_release_cents",
            "resolved_by", "resolution_note", "created_at", "resolved_at")
MESSAGE_SETTINGS = ("user_id", "read_receipts")
MESSAGES = ("id", "task_id", "sender_id", "recipient_id", "body", "created_at", "read_at")
RATINGS = ("id", "task_id", "rater_id", "ratee_id", "ratee_role", "stars", "comment", "tags",
           "is_auto", "created_at", "revealed_at")
RATING_WINDOWS = ("task_id", "closes_at")
TRUST_LEDGER = ("user_id", "old_tier", "new_tier", "reason", "created_at")
# fmt: on
