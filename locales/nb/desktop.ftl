# Ferry sin bakgrunnsapp (ferry-app): menyen i systemkurven, statuslinjen
# og verktøytipset der, og varsler. Norsk bokmål.
# Vinduets tekster ligger i window.ftl. Id-ene her begynner med tray- eller
# notify-, så de aldri kolliderer med vinduets.

## Menyen og verktøytipset i systemkurven

tray-title = Ferry
tray-sync-now = Synkroniser nå
tray-pause = Sett på pause
tray-resume = Fortsett
tray-open = Åpne Ferry
tray-start-at-login = Start ved innlogging
tray-quit = Avslutt Ferry

## Statuslinjen: korte deler, skilt med " · ",
## f.eks. "3 venter · 1 konflikt · sist synkronisert for 2 min siden".

tray-state-sign-in-needed = du må logge inn
tray-state-offline = frakoblet
tray-state-paused = satt på pause
tray-state-stalled = står fast
tray-state-error = feil
tray-state-syncing = synkroniserer
# Endringer som ikke er på serveren ennå.
tray-waiting = { $count } venter
# Endringer serveren avviste.
tray-failed = { $count } avvist
tray-conflicts =
    { $count ->
        [one] { $count } konflikt
       *[other] { $count } konflikter
    }
# $ago er en av tray-ago-meldingene nedenfor.
tray-synced = synkronisert { $ago }
tray-last-sync = sist synkronisert { $ago }
tray-never-synced = aldri synkronisert
# $time er et klokkeslett, f.eks. 14:05.
tray-next-try = nytt forsøk kl. { $time }

## Hvor lenge siden, i statuslinjen

tray-ago-now = akkurat nå
tray-ago-seconds = for { $n } s siden
tray-ago-minutes = for { $n } min siden
tray-ago-hours =
    { $n ->
        [one] for { $n } time siden
       *[other] for { $n } timer siden
    }
tray-ago-days =
    { $n ->
        [one] for { $n } dag siden
       *[other] for { $n } dager siden
    }

## Hva som gikk galt, med vanlige ord (i stedet for feilmeldingen)

tray-problem-unreachable = får ikke kontakt med serveren
tray-problem-server-error = serveren har et problem
tray-problem-rate-limited = serveren ber oss vente litt
tray-problem-untrusted-certificate = serverens sertifikat er ikke til å stole på
tray-problem-sign-in-needed = du må logge inn
tray-problem-bad-answer = uventet svar fra serveren
tray-problem-refused = serveren avviste en forespørsel
tray-problem-local-data = problem med dataene på denne maskinen
tray-problem-other = noe gikk galt

## Varsler: ett sammendrag, aldri ett per endring

notify-title-sign-in = Ferry: du må logge inn
notify-title-decision = Ferry trenger en avgjørelse fra deg
notify-title-stalled = Ferry: synkroniseringen står fast
notify-title-uploaded = Ferry: alle endringer er lastet opp
notify-sign-in = Logg inn på nytt for å fortsette å synkronisere. Endringene dine er tatt vare på.
notify-conflicts =
    { $count ->
        [one] { $count } konflikt må løses.
       *[other] { $count } konflikter må løses.
    }
notify-failed =
    { $count ->
        [one] { $count } endring ble avvist av serveren.
       *[other] { $count } endringer ble avvist av serveren.
    }
notify-stalled =
    { $count ->
        [one] { $count } endring venter og kommer ikke videre.
       *[other] { $count } endringer venter og kommer ikke videre.
    }
notify-back-online =
    { $count ->
        [one] Tilkoblet igjen: { $count } endring er lastet opp.
       *[other] Tilkoblet igjen: { $count } endringer er lastet opp.
    }
notify-window-failed-title = Ferry
notify-window-failed = Ferry synkroniserer fortsatt, men vinduet kunne ikke åpnes: { $error }
