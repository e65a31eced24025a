// Submits the form that carries the service ticket to the service, so that the user
// need not press its button. The server serves this file because the pages' policy
// forbids inline script.
"use strict";
var form = document.getElementById("cas-post");
if (form) {
  form.submit();
}
