// The register's pages inside Microsoft Teams: start Teams' library, open Microsoft's sign-in
// in a window of its own (it refuses to show inside a tab), and save a pinned tab's choice.
(function () {
  "use strict";
  var teams = window.microsoftTeams;
  if (!teams) { return; }
  teams.app.initialize().then(function () {
    var signin = document.getElementById("teams-signin");
    if (signin && signin.dataset.popupUrl) {
      signin.addEventListener("click", function (event) {
        event.preventDefault();
        teams.authentication.authenticate({ url: window.location.origin + signin.dataset.popupUrl })
          .then(function () { window.location.reload(); })
          .catch(function () { document.getElementById("teams-signin-problem").hidden = false; });
      });
    }
    if (document.getElementById("teams-signed-in")) {
      teams.authentication.notifySuccess();
    }
    var form = document.getElementById("teams-register-config");
    if (form) {
      teams.pages.config.registerOnSaveHandler(function (saveEvent) {
        var view = form.querySelector("input[name=view]:checked").value;
        var board = form.querySelector("select[name=board]").value;
        var query = "?view=" + encodeURIComponent(view) + (board ? "&board=" + encodeURIComponent(board) : "");
        teams.pages.config.setConfig({
          entityId: "register-" + view + (board ? "-" + board : ""),
          contentUrl: form.dataset.contentUrl + query,
          websiteUrl: form.dataset.websiteUrl + "/" + view + (board ? "?board=" + encodeURIComponent(board) : ""),
          suggestedDisplayName: form.dataset.tabName
        }).then(function () { saveEvent.notifySuccess(); });
      });
      teams.pages.config.setValidityState(true);
    }
  });
})();
