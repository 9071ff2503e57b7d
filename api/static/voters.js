/* The voters' pages (/vote and /vote/status/{id}): plain JavaScript, no framework.
 *
 * 1. Confirm the phone: POST /v1/elections/{eid}/verification {phone} -> a code is sent;
 *    POST .../verification/{challenge_id} {code} -> a device token, kept in this
 *    browser's localStorage for the election (the phone number is not kept).
 * 2. Find the station: GET /v1/elections/{eid}/stations?q= (number, name or address).
 * 3. Choose the options; 4. take or choose the photo.
 * Send: one XMLHttpRequest (it reports upload progress), with a submission id made once
 * per ballot and re-sent unchanged on every retry (network errors, 5xx, 409, 429, with
 * backoff and Retry-After), so the server counts it once. Any other refusal is final and
 * its message is shown. Then the receipt, and /vote/status/{id} reads the status with
 * the device token.
 * Every message is in the page's language (voters/_messages.html); errors go to a
 * role=alert element, progress to role=status.
 */
(function () {
  "use strict";

  var messagesElement = document.getElementById("voters-messages");
  var MESSAGES = messagesElement ? JSON.parse(messagesElement.textContent) : {};
  var MAX_TRIES = 8;
  var MAX_WAIT_SECONDS = 60;

  function t(key, values) {
    var text = MESSAGES[key] || key;
    Object.keys(values || {}).forEach(function (name) {
      text = text.split("{" + name + "}").join(String(values[name]));
    });
    return text;
  }

  function $(id) {
    return document.getElementById(id);
  }

  function show(element, visible) {
    if (element) element.hidden = !visible;
  }

  function tokenKey(election) {
    return "golos.device_token." + election;
  }

  function storedToken(election) {
    try {
      return window.localStorage.getItem(tokenKey(election));
    } catch (e) {
      return null;
    }
  }

  function storeToken(election, token) {
    try {
      if (token) window.localStorage.setItem(tokenKey(election), token);
      else window.localStorage.removeItem(tokenKey(election));
    } catch (e) {
      /* private mode: the token lives as long as the page */
    }
  }

  function announce(text) {
    var status = $("vote-status");
    if (!status) return;
    status.textContent = text;
    show(status, Boolean(text));
  }

  function fail(text) {
    var error = $("vote-error");
    if (error) error.textContent = text || "";
  }

  function serverMessage(body, fallback) {
    var detail = body && body.detail;
    if (detail && typeof detail === "object" && !Array.isArray(detail) && detail.message) {
      return detail.message;
    }
    if (Array.isArray(detail) && detail.length && detail[0].msg) return detail[0].msg;
    return fallback;
  }

  function newId() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") {
      return window.crypto.randomUUID();
    }
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    var hex = Array.prototype.map.call(bytes, function (b) {
      return (b + 0x100).toString(16).slice(1);
    }).join("");
    return [hex.slice(0, 8), hex.slice(8, 12), hex.slice(12, 16), hex.slice(16, 20), hex.slice(20)].join("-");
  }

  /* The page's CSRF token (base.html puts it on <body> for htmx). */
  function csrfToken() {
    try {
      return JSON.parse(document.body.getAttribute("hx-headers") || "{}")["X-CSRF-Token"] || "";
    } catch (e) {
      return "";
    }
  }

  /* A JSON request; resolves {status, body, headers} (body null when not JSON);
   * rejects only when the network failed. */
  function request(method, url, body, token) {
    var headers = { Accept: "application/json" };
    if (body !== undefined) {
      headers["Content-Type"] = "application/json";
      headers["X-CSRF-Token"] = csrfToken();
    }
    if (token) headers.Authorization = "Bearer " + token;
    return fetch(url, {
      method: method,
      headers: headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
      cache: "no-store",
    }).then(function (response) {
      return response.json().then(
        function (json) { return { status: response.status, body: json, headers: response.headers }; },
        function () { return { status: response.status, body: null, headers: response.headers }; }
      );
    });
  }

  function statusText(status) {
    return MESSAGES["status_" + status] || status;
  }

  function reasonText(reason) {
    var key = "reason_" + reason;
    return MESSAGES[key] || reason;
  }

  /* ---------------------------------------------------------------- /vote */

  function votePage(root) {
    var election = root.getAttribute("data-election");
    var maxMarks = parseInt(root.getAttribute("data-max-marks"), 10) || 1;
    var base = "/v1/elections/" + encodeURIComponent(election);
    var challengeId = null;
    var pending = null; /* {id, fingerprint}: the ballot being sent, its id kept for retries */
    var sending = false;

    function verifiedState() {
      var token = storedToken(election);
      show($("phone-form"), !token && !challengeId);
      show($("code-form"), !token && Boolean(challengeId));
      show($("phone-done"), Boolean(token));
      show($("after-phone"), Boolean(token));
      return token;
    }

    $("phone-form").addEventListener("submit", function (event) {
      event.preventDefault();
      fail("");
      var phone = $("phone").value.trim();
      if (!phone) {
        fail(t("enter_phone"));
        $("phone").focus();
        return;
      }
      announce(t("sending_code"));
      request("POST", base + "/verification", { phone: phone }).then(function (answer) {
        if (answer.status === 202) {
          challengeId = answer.body.challenge_id;
          announce(t("code_sent"));
          verifiedState();
          $("code").value = "";
          $("code").focus();
        } else {
          announce("");
          fail(t("error", { message: serverMessage(answer.body, String(answer.status)) }));
          $("phone").focus();
        }
      }, function () {
        announce("");
        fail(t("network_error"));
      });
    });

    $("code-form").addEventListener("submit", function (event) {
      event.preventDefault();
      fail("");
      var code = $("code").value.trim();
      if (!code) {
        fail(t("enter_code"));
        $("code").focus();
        return;
      }
      announce(t("verifying"));
      request("POST", base + "/verification/" + encodeURIComponent(challengeId), { code: code }).then(
        function (answer) {
          if (answer.status === 200 && answer.body && answer.body.device_token) {
            storeToken(election, answer.body.device_token);
            challengeId = null;
            $("phone").value = ""; /* not kept anywhere once confirmed */
            announce(t("verified"));
            verifiedState();
            $("h-station").focus();
            return;
          }
          announce("");
          if (answer.status === 410 || answer.status === 429 || answer.status === 404) {
            challengeId = null; /* this code is spent: ask for a new one */
            verifiedState();
          }
          fail(t("error", { message: serverMessage(answer.body, String(answer.status)) }));
          (challengeId ? $("code") : $("phone")).focus();
        },
        function () {
          announce("");
          fail(t("network_error"));
        }
      );
    });

    $("other-number").addEventListener("click", function () {
      challengeId = null;
      fail("");
      announce("");
      verifiedState();
      $("phone").focus();
    });

    $("forget-phone").addEventListener("click", function () {
      storeToken(election, null);
      announce(t("forgotten"));
      verifiedState();
      $("phone").focus();
    });

    /* Step 2: the station. */
    var searchTimer = null;
    var searchSerial = 0;

    function renderStations(stations) {
      var list = $("station-list");
      list.textContent = "";
      stations.forEach(function (station, index) {
        var row = document.createElement("div");
        row.className = "choice";
        var input = document.createElement("input");
        input.type = "radio";
        input.name = "precinct";
        input.value = station.id;
        input.id = "station-" + index;
        var label = document.createElement("label");
        label.htmlFor = input.id;
        var name = document.createElement("span");
        name.className = "station-name";
        name.textContent = (station.name || station.id) + " (" + station.id + ")";
        var address = document.createElement("span");
        address.className = "station-address muted";
        address.textContent = [station.address, station.district, station.region]
          .filter(Boolean).join(", ");
        label.appendChild(name);
        label.appendChild(address);
        row.appendChild(input);
        row.appendChild(label);
        list.appendChild(row);
      });
      if (stations.length === 1) list.querySelector("input").checked = true;
      show($("station-results"), stations.length > 0);
    }

    function searchStations(focusResults) {
      var query = $("station-q").value.trim();
      fail("");
      if (query.length < 2) {
        if (focusResults) fail(t("query_too_short"));
        return;
      }
      var serial = ++searchSerial;
      announce(t("searching"));
      request("GET", base + "/stations?limit=20&q=" + encodeURIComponent(query)).then(function (answer) {
        if (serial !== searchSerial) return; /* a later search is under way */
        if (answer.status !== 200 || !Array.isArray(answer.body)) {
          announce("");
          fail(t("error", { message: serverMessage(answer.body, String(answer.status)) }));
          return;
        }
        renderStations(answer.body);
        announce(answer.body.length ? t("stations_found", { n: answer.body.length }) : t("no_stations"));
        var first = $("station-list").querySelector("input");
        if (focusResults && first) first.focus();
      }, function () {
        if (serial === searchSerial) {
          announce("");
          fail(t("network_error"));
        }
      });
    }

    $("station-form").addEventListener("submit", function (event) {
      event.preventDefault();
      window.clearTimeout(searchTimer);
      searchStations(true);
    });
    $("station-q").addEventListener("input", function () {
      window.clearTimeout(searchTimer);
      searchTimer = window.setTimeout(function () { searchStations(false); }, 400);
    });

    /* Steps 3 and 4, and sending. */
    function chosenStation() {
      var checked = document.querySelector("input[name=precinct]:checked");
      return checked ? checked.value : null;
    }

    function chosenOptions() {
      return Array.prototype.map.call(
        document.querySelectorAll("#choice input[name=choice]:checked"),
        function (input) { return input.value; }
      );
    }

    function check() {
      var station = chosenStation();
      if (!station) return [t("choose_station"), $("station-q")];
      var options = chosenOptions();
      if (!options.length) return [t("choose_option"), document.querySelector("#choice input")];
      if (options.length > maxMarks) {
        return [t("too_many_options", { n: maxMarks }), document.querySelector("#choice input")];
      }
      var file = $("photo").files[0];
      if (!file) return [t("choose_photo"), $("photo")];
      return null;
    }

    function fingerprint(station, options, file) {
      return [station, options.join(","), file.name, file.size, file.lastModified].join("|");
    }

    function progress(percent) {
      show($("upload"), percent !== null);
      if (percent !== null) $("upload-progress").value = percent;
    }

    function waitSeconds(attempt, response) {
      var header = response && response.getResponseHeader("Retry-After");
      var asked = header && /^\d+$/.test(header) ? parseInt(header, 10) : null;
      var backoff = Math.min(MAX_WAIT_SECONDS, Math.pow(2, attempt)); /* 1, 2, 4 ... s */
      return asked === null ? backoff : Math.min(Math.max(asked, 1), MAX_WAIT_SECONDS * 5);
    }

    function receipt(body) {
      pending = null;
      sending = false;
      progress(null);
      $("receipt-id").textContent = body.submission_id;
      $("receipt-status").textContent = statusText(body.status);
      $("receipt-link").href = "/vote/status/" + encodeURIComponent(body.submission_id) +
        "?election=" + encodeURIComponent(election);
      show($("after-phone"), false);
      show($("step-phone"), false);
      show($("receipt"), true);
      announce(t("sent"));
      $("h-receipt").focus();
    }

    function finalError(xhr) {
      var body = null;
      try { body = JSON.parse(xhr.responseText); } catch (e) { body = null; }
      sending = false;
      pending = null; /* a changed ballot gets a new id */
      progress(null);
      announce("");
      if (xhr.status === 401) {
        storeToken(election, null);
        verifiedState();
        fail(t("token_expired"));
        $("phone").focus();
        return;
      }
      var field = body && body.detail && body.detail.field;
      fail(t("error", { message: serverMessage(body, String(xhr.status)) }));
      var focus = field === "photo" ? $("photo")
        : field === "precinct_id" ? $("station-q")
        : field === "declared_choice" ? document.querySelector("#choice input")
        : $("send");
      if (focus) focus.focus();
    }

    function send(attempt) {
      var token = storedToken(election);
      var form = new FormData();
      form.append("election_id", election);
      form.append("precinct_id", pending.station);
      form.append("declared_choice", pending.options.join(","));
      form.append("submission_id", pending.id);
      form.append("photo", pending.file, pending.file.name || "ballot.jpg");
      var xhr = new XMLHttpRequest();
      xhr.open("POST", "/v1/submissions");
      xhr.setRequestHeader("Authorization", "Bearer " + token);
      xhr.setRequestHeader("Accept", "application/json");
      xhr.timeout = 5 * 60 * 1000;
      xhr.upload.addEventListener("progress", function (event) {
        if (event.lengthComputable) {
          var percent = Math.round((100 * event.loaded) / event.total);
          progress(percent);
          announce(t("uploading", { percent: percent }));
        }
      });
      function retry(response) {
        if (attempt + 1 >= MAX_TRIES) {
          sending = false;
          progress(null);
          announce("");
          fail(t("gave_up")); /* pending stays: pressing Send re-sends the same id */
          $("send").focus();
          return;
        }
        var seconds = waitSeconds(attempt, response);
        announce(t("retrying", { seconds: seconds }));
        window.setTimeout(function () { send(attempt + 1); }, seconds * 1000);
      }
      xhr.addEventListener("load", function () {
        var status = xhr.status;
        if (status === 200 || status === 202) {
          var body = null;
          try { body = JSON.parse(xhr.responseText); } catch (e) { body = null; }
          if (body && body.submission_id) receipt(body);
          else retry(xhr);
        } else if (status >= 500 || status === 409 || status === 429 || status === 0) {
          retry(xhr);
        } else {
          finalError(xhr);
        }
      });
      xhr.addEventListener("error", function () { retry(null); });
      xhr.addEventListener("timeout", function () { retry(null); });
      progress(0);
      xhr.send(form);
    }

    $("ballot-form").addEventListener("submit", function (event) {
      event.preventDefault();
      if (sending) return;
      fail("");
      var problem = check();
      if (problem) {
        fail(problem[0]);
        if (problem[1]) problem[1].focus();
        return;
      }
      var station = chosenStation();
      var options = chosenOptions();
      var file = $("photo").files[0];
      var print = fingerprint(station, options, file);
      if (!pending || pending.print !== print) {
        /* A new ballot: a new id, made once and kept for every retry. */
        pending = { id: newId(), print: print, station: station, options: options, file: file };
      }
      sending = true;
      send(0);
    });

    $("another").addEventListener("click", function () {
      show($("receipt"), false);
      show($("step-phone"), true);
      $("photo").value = "";
      announce("");
      verifiedState();
      $("h-station").focus();
    });

    verifiedState();
  }

  /* ---------------------------------------------------- /vote/status/{id} */

  function statusPage(root) {
    var election = root.getAttribute("data-election");
    var submission = root.getAttribute("data-submission");
    var text = $("status-text");
    var reasons = $("status-reasons");

    function load() {
      fail("");
      reasons.textContent = "";
      var token = storedToken(election);
      if (!token) {
        text.textContent = "—";
        fail(t("no_token"));
        return;
      }
      text.textContent = t("loading_status");
      request("GET", "/v1/submissions/" + encodeURIComponent(submission), undefined, token).then(
        function (answer) {
          if (answer.status === 200 && answer.body) {
            text.textContent = statusText(answer.body.status);
            (answer.body.reasons || []).forEach(function (reason) {
              var item = document.createElement("li");
              item.textContent = reasonText(reason);
              reasons.appendChild(item);
            });
          } else {
            text.textContent = "—";
            if (answer.status === 401) {
              storeToken(election, null);
              fail(t("token_expired"));
            } else if (answer.status === 404) {
              fail(t("not_found"));
            } else {
              fail(t("error", { message: serverMessage(answer.body, String(answer.status)) }));
            }
          }
        },
        function () {
          text.textContent = "—";
          fail(t("network_error"));
        }
      );
    }

    $("refresh").addEventListener("click", load);
    load();
  }

  var vote = $("vote");
  if (vote) votePage(vote);
  var status = $("status-page");
  if (status) statusPage(status);
})();
