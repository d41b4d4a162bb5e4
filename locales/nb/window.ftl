# Vinduets ord (ui/). Norsk bokmål.
# Id-ene er unike på tvers av alle .ftl-filene i et språk: skrivebordets fil
# bruker prefiksene tray- og notify-, denne aldri.
# ui/test/i18n.test.ts sjekker at en og nb har de samme id-ene og
# attributtene, og at alle id-er siden bruker, finnes.

## Felles

details = Detaljer
save = Lagre
cancel = Avbryt
show-more = Vis flere
value-empty = (tomt)
value-null = (ingenting)

## Tid (tallene kommer formatert for språket)

ago-now = akkurat nå
ago-s = for { $n } s siden
ago-min = for { $n } min siden
ago-h = for { $n } t siden
ago-d = for { $n } d siden
in-now = nå
in-s = om { $n } s
in-min = om { $n } min
in-h = om { $n } t

## Navigasjon og overskrift

nav-label = Visninger
nav-overview = Oversikt
nav-queue = Kø
nav-failures = Feil
nav-conflicts = Konflikter
nav-history = Historikk
nav-settings = Innstillinger
nav-demo = demo

state-idle = Oppdatert
state-syncing = Synkroniserer
state-offline = Frakoblet
state-paused = Satt på pause
state-error = Feil
state-stalled = Står fast
state-needs-sign-in = Må logge inn
state-needs-decision = Trenger din avgjørelse
state-waiting = Venter på opplasting

## Problemer: hva som skjedde, og hva Ferry gjør eller hva du kan gjøre

problem-retry = Ferry prøver igjen { $when }.
problem-unreachable = Kan ikke nå serveren.
problem-unreachable-next = Ferry tar vare på endringene dine og prøver igjen av seg selv.
problem-server-error = Serveren har et problem akkurat nå.
problem-server-error-next = Ferry tar vare på endringene dine og prøver igjen av seg selv.
problem-rate-limited = Serveren ba Ferry om å sende saktere.
problem-rate-limited-next = Ferry venter som serveren ba om, og fortsetter av seg selv.
problem-untrusted-certificate = Serverens sertifikat er ikke til å stole på, så Ferry sender ingenting dit.
problem-untrusted-certificate-next = Sjekk serveradressen under Innstillinger, eller spør den som driver serveren.
problem-sign-in-needed = Du må logge inn på nytt.
problem-sign-in-needed-next = Endringene dine er tatt vare på. Logg inn under Innstillinger for å synkronisere videre.
problem-bad-answer = Svaret kom ikke fra en Ferry-server (kanskje en innloggingsside eller en proxy).
problem-bad-answer-next = Ferry prøver igjen av seg selv. Sjekk serveradressen under Innstillinger hvis det fortsetter.
problem-refused = Serveren avviste forespørselen fra Ferry.
problem-refused-next = Ferry prøver igjen av seg selv. Hvis det fortsetter, lagre diagnostikk (Innstillinger) og send den til den som driver serveren.
problem-local-data = Ferry får ikke skrevet til dataene sine på denne datamaskinen (disken kan være full eller skrivebeskyttet).
problem-local-data-next = Frigjør litt diskplass, og velg så Synkroniser nå. Endringene dine så langt er tatt vare på.
problem-other = Noe gikk galt under synkroniseringen.
problem-other-next = Ferry prøver igjen av seg selv. Detaljene under sier mer.

## Oversikt

overview-last-synced = Sist synkronisert { $ago }
overview-not-synced = Ikke synkronisert ennå
overview-signed-in-as = logget inn som { $user }
overview-sync-now = Synkroniser nå
overview-pause = Sett på pause
overview-resume = Fortsett
overview-progress-label = Opplasting
overview-progress = { $uploaded } av { $total } lastet opp · { $downloaded } lastet ned
overview-card-waiting = Venter
overview-card-waiting-some = skal lastes opp
overview-card-waiting-none = ingenting å laste opp
overview-card-failed = Avvist
overview-card-failed-some = avvist av serveren
overview-card-conflicts = Konflikter
overview-card-conflicts-some = trenger din avgjørelse
overview-card-none = ingen
overview-sign-in-expired = Innloggingen din er utløpt. Endringene dine er tatt vare på; logg inn igjen for å synkronisere videre.
overview-go-sign-in = Logg inn
overview-conflicts-need = { $n ->
    [one] 1 konflikt trenger din avgjørelse.
   *[other] { $n } konflikter trenger din avgjørelse.
}
overview-go-resolve = Løs
overview-failed-refused = { $n ->
    [one] 1 endring ble avvist av serveren.
   *[other] { $n } endringer ble avvist av serveren.
}
overview-go-review = Se gjennom
overview-stalled = { $n ->
    [one] 1 endring venter, og ingenting har skjedd på en stund.
   *[other] { $n } endringer venter, og ingenting har skjedd på en stund.
}
overview-go-queue = Åpne køen
overview-no-server = Ingen server er satt opp ennå.
overview-go-settings = Innstillinger

## Kø

queue-title = Kø
queue-filter-label = Vis
queue-filter-all = Alle
queue-filter-pending = Venter
queue-filter-in-flight = Lastes opp
queue-filter-failed = Avvist
queue-filter-conflict = I konflikt
queue-changed-reload = Køen er endret — last inn på nytt
queue-col-state = Status
queue-col-record = Post
queue-col-change = Endring
queue-col-tries = Forsøk
queue-col-edited = Endret
queue-col-note = Merknad
queue-state-pending = venter
queue-state-in-flight = lastes opp
queue-state-failed = avvist
queue-state-conflict = i konflikt
queue-op-upsert = endring
queue-op-delete = sletting
queue-note-retry = Prøver igjen { $when }
queue-note-retry-soon = Prøver igjen snart
queue-note-sending = Lastes opp
queue-note-next-upload = Blir med i neste opplasting
queue-note-failed = Avvist: se Feil
queue-note-conflict = Trenger deg: se Konflikter
queue-count-all = { $n } i køen
queue-count-shown = { $n } vist
queue-count-shown-more = { $n }+ vist
queue-empty = Ingenting venter. Alt er på serveren.

## Feil

failures-title = Feil
failures-retry-all = Prøv alle igjen
failures-empty = Ingen avviste endringer.
failure-tries = { $n ->
    [one] 1 forsøk
   *[other] { $n } forsøk
}
failure-refused = Serveren avviste denne endringen: { $reason }
failure-refused-no-reason = Serveren avviste denne endringen.
failure-next-edit = Rediger den og send på nytt, eller forkast den.
failure-next = Prøv igjen, eller forkast den.
failure-edit = Rediger og send på nytt
failure-edit-named = Rediger og send på nytt: { $label }
failure-edit-form = Rett { $label }
failure-retry = Prøv igjen
failure-retry-named = Prøv igjen: { $label }
failure-discard = Forkast
failure-discard-named = Forkast { $label }
failure-discard-confirm = Forkaste denne endringen for godt?
failure-discard-confirm-named = Forkaste endringen av { $label } for godt?
failure-correcting = retter
failure-send-corrected = Send rettet endring
edit-problem-number = skriv et tall, f.eks. 150 eller 149,50
edit-problem-json = skriv en JSON-verdi, f.eks. ["a", "b"] eller null

## Konflikter

conflicts-title = Konflikter
conflicts-empty = Ingen konflikter. Ingenting trenger din avgjørelse.
conflicts-show-more = Vis flere ({ $n } ikke vist)
conflicts-capped = Viser de eldste { $shown } av { $total }: løs noen, eller behold én side for alle, for å se resten.
conflicts-bulk-mine = { $which ->
    [selected] Behold min for { $n } valgte
   *[all] Behold min for alle { $n }
}
conflicts-bulk-theirs = { $which ->
    [selected] Behold serverens for { $n } valgte
   *[all] Behold serverens for alle { $n }
}
conflict-select = Velg { $label } for å beholde én side
conflict-edited = endret her { $here }, på serveren { $there }
conflict-deleted-here = slettet her
conflict-deleted-there = slettet på serveren
conflict-delete-explain = Den ene siden slettet posten: behold den slettet, eller behold den andre siden i sin helhet.
conflict-col-field = Felt
conflict-col-base = Før begge endringene
conflict-col-mine = Denne enheten (min)
conflict-col-theirs = Serveren
conflict-col-theirs-by = Serveren ({ $who })
conflict-pick-mine = Behold min for { $field }: { $value }
conflict-pick-theirs = Behold serverens for { $field }: { $value }
conflict-keep-mine = Behold min
conflict-keep-mine-named = Behold min for { $label }
conflict-keep-theirs = Behold serverens
conflict-keep-theirs-named = Behold serverens for { $label }
conflict-apply = Behold valgte verdier
conflict-apply-named = Behold valgte verdier for { $label }
conflict-apply-hint = Velg en verdi i hver uthevet rad først.

## Historikk

history-title = Historikk
history-settled = Løste konflikter
history-runs = Synkroniseringer
history-older = Vis eldre
history-empty = Ingen konflikter er løst automatisk.
history-no-runs = Ingen synkroniseringer ennå.
history-deleted = slettet
history-side-local = Denne enheten
history-side-remote = Serveren
history-side-result = Resultat
history-winner-local = endringen fra denne enheten ble beholdt
history-winner-remote = serverens endring ble beholdt
history-winner-merged = slått sammen
history-winner-other = { $winner }
history-restore = Gjenopprett min endring
history-restore-named = Gjenopprett min endring av { $label }
history-col-finished = Ferdig
history-col-took = Tid
history-col-uploaded = Lastet opp
history-col-downloaded = Lastet ned
history-col-failed = Avvist
history-col-conflicts = Konflikter
history-col-result = Resultat
history-took = { $s } s
history-run-ok = ok

## Konfliktregler

policy-lww = Siste endring vinner
policy-server-wins = Serveren vinner
policy-client-wins = Denne enheten vinner
policy-merge = Slå sammen felt
policy-manual = Spør meg

## Innstillinger

settings-title = Innstillinger
settings-server = Server
settings-server-address = Serveradresse
settings-demo = Demomodus: en innebygd server med eksempeldata; det ekte oppsettet ditt er urørt.
settings-account = Konto
settings-signed-in-as = Logget inn som { $user }
settings-sign-out = Logg ut
settings-user = Brukernavn
settings-password = Passord
settings-sign-in = Logg inn
settings-this-computer = Denne datamaskinen
settings-language = Språk
settings-language-system = Som systemet
settings-language-nb = Norsk bokmål
settings-language-en = English
settings-autostart = Start Ferry ved innlogging
settings-notifications = Vis varsler (bare sammendrag: konflikter, avviste endringer, innlogging, stopp)
settings-interval-label = Se etter andres endringer på serveren
settings-interval = { $secs ->
    [30] hvert 30. sekund
    [60] hvert minutt
    [300] hvert 5. minutt
    [900] hvert 15. minutt
    [3600] hver time
   *[other] hvert { $secs }. sekund
}
settings-records = Poster
settings-records-explain = Når begge sider har endret en post, avgjør regelen. Tittelfeltet er feltet som gir en post navnet i disse visningene (tomt: title, name eller description).
settings-col-entity = Type
settings-col-policy = Når begge har endret den
settings-col-title-field = Tittelfelt
settings-policy-for = Regel for { $entity }
settings-title-field-for = Tittelfelt for { $entity }
settings-title-field-default = standard
settings-diagnostics = Diagnostikk
settings-diagnostics-explain = Lagrer én fil med Ferrys logger og tilstand som du kan sende til den som hjelper deg. Den inneholder ingen passord eller innloggingsnøkler.
settings-diagnostics-records = Ta med innholdet i postene
settings-diagnostics-save = Lagre diagnostikk
settings-about = Ferry { $version } · data i { $dir }

## Meldinger

toast-error = Det gikk ikke: { $reason }
toast-syncing = Synkroniserer nå
toast-paused = Satt på pause
toast-resumed = Fortsetter
toast-retrying-all = Prøver alle igjen
toast-queued-again = Lagt i køen igjen
toast-discarded = Endringen er forkastet
toast-corrected = Den rettede endringen er lagt i køen
toast-resolved = Løst; laster opp valget ditt
toast-resolved-n = { $n ->
    [one] 1 konflikt løst
   *[other] { $n } konflikter løst
}
toast-restored = Endringen din er lagt i køen igjen
toast-saved = Lagret
toast-server-saved = Serveren er lagret
toast-signed-in = Logget inn
toast-signed-out = Logget ut
toast-autostart-on = Ferry starter ved innlogging
toast-autostart-off = Ferry starter ikke lenger ved innlogging
toast-notifications-on = Varsler på
toast-notifications-off = Varsler av
toast-policy-saved = Regelen for { $entity } er lagret
toast-title-field-saved = Tittelfeltet for { $entity } er lagret
toast-diagnostics-saved = Diagnostikken er lagret i { $path }
