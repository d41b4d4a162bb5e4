# Ferry's resident desktop app (ferry-app): the tray menu, the tray's
# status line and tooltip, and notifications. English.
# The window's messages are in window.ftl. Ids here start with tray- or
# notify- so they never clash with the window's.

## The tray menu and tooltip

tray-title = Ferry
tray-sync-now = Sync now
tray-pause = Pause
tray-resume = Resume
tray-open = Open Ferry
tray-start-at-login = Start at login
tray-quit = Quit Ferry

## The tray's status line: short parts, joined by " · ",
## e.g. "3 waiting · 1 conflict · last sync 2 min ago".

tray-state-sign-in-needed = sign-in needed
tray-state-offline = offline
tray-state-paused = paused
tray-state-stalled = stalled
tray-state-error = error
tray-state-syncing = syncing
# Changes not yet on the server.
tray-waiting = { $count } waiting
# Changes the server refused.
tray-failed = { $count } failed
tray-conflicts =
    { $count ->
        [one] { $count } conflict
       *[other] { $count } conflicts
    }
# $ago is one of the tray-ago- messages below.
tray-synced = synced { $ago }
tray-last-sync = last sync { $ago }
tray-never-synced = never synced
# $time is a clock time, e.g. 2:05 PM.
tray-next-try = next try { $time }

## How long ago, in the status line

tray-ago-now = just now
tray-ago-seconds = { $n } s ago
tray-ago-minutes = { $n } min ago
tray-ago-hours = { $n } h ago
tray-ago-days = { $n } d ago

## What went wrong, in plain words (instead of the error's text)

tray-problem-unreachable = can't reach the server
tray-problem-server-error = the server has a problem
tray-problem-rate-limited = the server asks us to wait
tray-problem-untrusted-certificate = the server's certificate is not trusted
tray-problem-sign-in-needed = sign-in needed
tray-problem-bad-answer = unexpected answer from the server
tray-problem-refused = the server refused a request
tray-problem-local-data = problem with the data on this computer
tray-problem-other = something went wrong

## Notifications: one summary, never one per change

notify-title-sign-in = Ferry: sign-in needed
notify-title-decision = Ferry needs your decision
notify-title-stalled = Ferry: sync stalled
notify-title-uploaded = Ferry: all changes uploaded
notify-sign-in = Sign in again to keep syncing; your changes are kept.
notify-conflicts =
    { $count ->
        [one] { $count } conflict to resolve.
       *[other] { $count } conflicts to resolve.
    }
notify-failed =
    { $count ->
        [one] { $count } change was refused by the server.
       *[other] { $count } changes were refused by the server.
    }
notify-stalled =
    { $count ->
        [one] { $count } change waiting and not moving.
       *[other] { $count } changes waiting and not moving.
    }
notify-back-online =
    { $count ->
        [one] Back online: { $count } change uploaded.
       *[other] Back online: { $count } changes uploaded.
    }
notify-window-failed-title = Ferry
notify-window-failed = Ferry keeps syncing, but its window could not open: { $error }
