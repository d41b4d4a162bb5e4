# The window's words (ui/). English.
# Ids are unique across every .ftl of a language: the desktop's file uses
# the prefixes tray- and notify-, this one never does.
# ui/test/i18n.test.ts checks that en and nb have the same ids and
# attributes, and that every id the page uses exists.

## Shared

details = Details
save = Save
cancel = Cancel
show-more = Show more
value-empty = (empty)
value-null = (nothing)

## Times (numbers come formatted for the language)

ago-now = just now
ago-s = { $n } s ago
ago-min = { $n } min ago
ago-h = { $n } h ago
ago-d = { $n } d ago
in-now = now
in-s = in { $n } s
in-min = in { $n } min
in-h = in { $n } h

## Navigation and headline

nav-label = Views
nav-overview = Overview
nav-queue = Queue
nav-failures = Failures
nav-conflicts = Conflicts
nav-history = History
nav-settings = Settings
nav-demo = demo

state-idle = Up to date
state-syncing = Syncing
state-offline = Offline
state-paused = Paused
state-error = Error
state-stalled = Stalled
state-needs-sign-in = Sign-in needed
state-needs-decision = Needs your decision
state-waiting = Waiting to upload

## Problems: what happened, then what Ferry does or what you can do

problem-retry = Ferry tries again { $when }.
problem-unreachable = Can't reach the server.
problem-unreachable-next = Ferry keeps your changes and tries again by itself.
problem-server-error = The server has a problem right now.
problem-server-error-next = Ferry keeps your changes and tries again by itself.
problem-rate-limited = The server asked Ferry to slow down.
problem-rate-limited-next = Ferry waits as asked, then goes on by itself.
problem-untrusted-certificate = The server's certificate is not trusted, so Ferry sends nothing to it.
problem-untrusted-certificate-next = Check the server address in Settings, or ask whoever runs the server.
problem-sign-in-needed = You need to sign in again.
problem-sign-in-needed-next = Your changes are kept. Sign in under Settings to go on syncing.
problem-bad-answer = The answer did not come from a Ferry server (a login page or a proxy, perhaps).
problem-bad-answer-next = Ferry tries again by itself. If this goes on, check the server address in Settings.
problem-refused = The server refused Ferry's request.
problem-refused-next = Ferry tries again by itself. If this goes on, save diagnostics (Settings) and send them to whoever runs the server.
problem-local-data = Ferry can't write to its data on this computer (the disk may be full or read-only).
problem-local-data-next = Free some disk space, then choose Sync now. Your changes so far are kept.
problem-other = Something went wrong while syncing.
problem-other-next = Ferry tries again by itself. The details below say more.

## Overview

overview-last-synced = Last synced { $ago }
overview-not-synced = Not synced yet
overview-signed-in-as = signed in as { $user }
overview-sync-now = Sync now
overview-pause = Pause
overview-resume = Resume
overview-progress-label = Upload progress
overview-progress = { $uploaded } of { $total } uploaded · { $downloaded } downloaded
overview-card-waiting = Waiting
overview-card-waiting-some = to upload
overview-card-waiting-none = nothing to upload
overview-card-failed = Failed
overview-card-failed-some = refused by the server
overview-card-conflicts = Conflicts
overview-card-conflicts-some = need your decision
overview-card-none = none
overview-sign-in-expired = Your sign-in expired. Your changes are kept; sign in again to keep syncing.
overview-go-sign-in = Sign in
overview-conflicts-need = { $n ->
    [one] 1 conflict needs your decision.
   *[other] { $n } conflicts need your decision.
}
overview-go-resolve = Resolve
overview-failed-refused = { $n ->
    [one] 1 change was refused by the server.
   *[other] { $n } changes were refused by the server.
}
overview-go-review = Review
overview-stalled = { $n ->
    [one] 1 change is waiting and nothing moved for a while.
   *[other] { $n } changes are waiting and nothing moved for a while.
}
overview-go-queue = Open queue
overview-no-server = No server set up yet.
overview-go-settings = Settings

## Queue

queue-title = Queue
queue-filter-label = Show
queue-filter-all = All
queue-filter-pending = Waiting
queue-filter-in-flight = Uploading
queue-filter-failed = Failed
queue-filter-conflict = In conflict
queue-changed-reload = The queue changed — reload
queue-col-state = State
queue-col-record = Record
queue-col-change = Change
queue-col-tries = Tries
queue-col-edited = Edited
queue-col-note = Note
queue-state-pending = waiting
queue-state-in-flight = uploading
queue-state-failed = failed
queue-state-conflict = in conflict
queue-op-upsert = edit
queue-op-delete = delete
queue-note-retry = Tries again { $when }
queue-note-retry-soon = Tries again soon
queue-note-sending = Uploading
queue-note-next-upload = Goes with the next upload
queue-note-failed = Refused: see Failures
queue-note-conflict = Your decision: see Conflicts
queue-count-all = { $n } in the queue
queue-count-shown = { $n } shown
queue-count-shown-more = { $n }+ shown
queue-empty = Nothing waiting. Everything is on the server.

## Failures

failures-title = Failures
failures-retry-all = Retry all
failures-empty = No failed changes.
failure-tries = { $n ->
    [one] 1 try
   *[other] { $n } tries
}
failure-refused = The server refused this change: { $reason }
failure-refused-no-reason = The server refused this change.
failure-next-edit = Edit it and send again, or discard it.
failure-next = Retry it, or discard it.
failure-edit = Edit and send again
failure-edit-named = Edit and send again: { $label }
failure-edit-form = Correct { $label }
failure-retry = Retry
failure-retry-named = Retry { $label }
failure-discard = Discard
failure-discard-named = Discard { $label }
failure-discard-confirm = Discard this change for good?
failure-discard-confirm-named = Discard this change to { $label } for good?
failure-correcting = correcting
failure-send-corrected = Send corrected change
edit-problem-number = type a number, e.g. 150 or 149,50
edit-problem-json = type a JSON value, e.g. ["a", "b"] or null

## Conflicts

conflicts-title = Conflicts
conflicts-empty = No conflicts. Nothing needs your decision.
conflicts-show-more = Show more ({ $n } not shown)
conflicts-capped = Showing the oldest { $shown } of { $total }: settle some, or keep one side for all, to see the rest.
conflicts-bulk-mine = { $which ->
    [selected] Keep mine for { $n } selected
   *[all] Keep mine for all { $n }
}
conflicts-bulk-theirs = { $which ->
    [selected] Keep theirs for { $n } selected
   *[all] Keep theirs for all { $n }
}
conflict-select = Select { $label } for keeping one side
conflict-edited = edited here { $here }, on the server { $there }
conflict-deleted-here = deleted here
conflict-deleted-there = deleted on the server
conflict-delete-explain = One side deleted the record: keep it deleted or keep the other side whole.
conflict-col-field = Field
conflict-col-base = Before both edits
conflict-col-mine = This device (mine)
conflict-col-theirs = Server (theirs)
conflict-col-theirs-by = Server (theirs, { $who })
conflict-pick-mine = Keep mine for { $field }: { $value }
conflict-pick-theirs = Keep theirs for { $field }: { $value }
conflict-keep-mine = Keep mine
conflict-keep-mine-named = Keep mine for { $label }
conflict-keep-theirs = Keep theirs
conflict-keep-theirs-named = Keep theirs for { $label }
conflict-apply = Keep picked values
conflict-apply-named = Keep picked values for { $label }
conflict-apply-hint = Pick a value in every highlighted row first.

## History

history-title = History
history-settled = Conflicts settled
history-runs = Sync runs
history-older = Show older
history-empty = No conflicts were settled automatically.
history-no-runs = No sync runs yet.
history-deleted = deleted
history-side-local = This device
history-side-remote = Server
history-side-result = Result
history-winner-local = this device's edit kept
history-winner-remote = server's edit kept
history-winner-merged = merged
history-winner-other = { $winner }
history-restore = Restore my edit
history-restore-named = Restore my edit to { $label }
history-col-finished = Finished
history-col-took = Took
history-col-uploaded = Uploaded
history-col-downloaded = Downloaded
history-col-failed = Failed
history-col-conflicts = Conflicts
history-col-result = Result
history-took = { $s } s
history-run-ok = ok

## Conflict policies

policy-lww = Last edit wins
policy-server-wins = Server wins
policy-client-wins = This device wins
policy-merge = Merge fields
policy-manual = Ask me

## Settings

settings-title = Settings
settings-server = Server
settings-server-address = Server address
settings-demo = Demo mode: an embedded server with sample data; your real setup is untouched.
settings-account = Account
settings-signed-in-as = Signed in as { $user }
settings-sign-out = Sign out
settings-user = User name
settings-password = Password
settings-sign-in = Sign in
settings-this-computer = This computer
settings-language = Language
settings-language-system = Same as the system
settings-language-nb = Norsk bokmål
settings-language-en = English
settings-autostart = Start Ferry at login
settings-notifications = Show notifications (summaries only: conflicts, failures, sign-in, stalls)
settings-interval-label = Check the server for others' changes
settings-interval = { $secs ->
    [30] every 30 seconds
    [60] every minute
    [300] every 5 minutes
    [900] every 15 minutes
    [3600] every hour
   *[other] every { $secs } s
}
settings-records = Records
settings-records-explain = When both sides changed a record, the policy decides. The title field is the field whose value names a record in these views (empty: title, name or description).
settings-col-entity = Kind
settings-col-policy = When both changed it
settings-col-title-field = Title field
settings-policy-for = Policy for { $entity }
settings-title-field-for = Title field for { $entity }
settings-title-field-default = default
settings-diagnostics = Diagnostics
settings-diagnostics-explain = Saves one file with Ferry's logs and state to send to whoever helps you. It holds no passwords or sign-in tokens.
settings-diagnostics-records = Include record contents
settings-diagnostics-save = Save diagnostics
settings-about = Ferry { $version } · data in { $dir }

## Toasts

toast-error = That didn't work: { $reason }
toast-syncing = Syncing now
toast-paused = Paused
toast-resumed = Resumed
toast-retrying-all = Retrying all
toast-queued-again = Queued again
toast-discarded = Change discarded
toast-corrected = Corrected change queued
toast-resolved = Resolved; uploading your choice
toast-resolved-n = { $n ->
    [one] 1 conflict resolved
   *[other] { $n } conflicts resolved
}
toast-restored = Your edit is queued again
toast-saved = Saved
toast-server-saved = Server saved
toast-signed-in = Signed in
toast-signed-out = Signed out
toast-autostart-on = Ferry starts at login
toast-autostart-off = Ferry no longer starts at login
toast-notifications-on = Notifications on
toast-notifications-off = Notifications off
toast-policy-saved = Policy for { $entity } saved
toast-title-field-saved = Title field for { $entity } saved
toast-diagnostics-saved = Diagnostics saved to { $path }
